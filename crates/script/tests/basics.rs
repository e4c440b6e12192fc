//! In-process checks of the scripting extension on a bare keyspace.

use std::sync::Arc;

use cairn_keyspace::{Frame, Keyspace};
use cairn_script::Scripting;

fn keyspace() -> Keyspace {
    Keyspace::builder()
        .extension(Arc::new(Scripting::new()))
        .build()
}

#[test]
fn pcall_of_redis_call_gets_the_error_table() {
    let ks = keyspace();
    let mut s = ks.session();
    let r = s.command(&[
        "EVAL",
        "local ok, e = pcall(redis.call, 'nosuch') return {type(e), tostring(e)}",
        "0",
    ]);
    let Frame::Array(v) = r else { panic!("{r:?}") };
    assert_eq!(v[0], Frame::bulk("string"), "{v:?}");
    assert_eq!(
        v[1],
        Frame::bulk("ERR Unknown Redis command called from script")
    );
}
