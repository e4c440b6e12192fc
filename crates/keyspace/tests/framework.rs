//! The command framework: extensions, subcommand errors, CONFIG SET, the
//! Service/Session contract.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Ctx, Extension, Flags, Keyspace};
use cairn_resp::{ConnInfo, Frame, Outcome, Service, Session as _};

struct Saver {
    saves: AtomicU64,
}

impl Extension for Saver {
    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            // EXCLUSIVE: a command that takes a view must hold the gate for write.
            CommandSpec::new("save", 1, Flags::ADMIN | Flags::EXCLUSIVE, "server"),
            CommandSpec::new("lastsave", 1, Flags::FAST, "server"),
            CommandSpec::new("badsave", 1, Flags::ADMIN, "server"),
        ]
    }

    fn call(&self, ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
        match ctx.command() {
            "save" => {
                // A real SAVE would iterate this view.
                let n = ctx.keyspace().view().map(|v| v.count()).unwrap_or(0);
                self.saves.fetch_add(1, Ordering::Relaxed);
                Frame::Integer(n as i64)
            }
            "badsave" => match ctx.keyspace().view() {
                Err(e) => Frame::error(format!("ERR {e}")),
                Ok(_) => Frame::ok(),
            },
            _ => Frame::Integer(self.saves.load(Ordering::Relaxed) as i64),
        }
    }

    fn info_sections(&self) -> Vec<&'static str> {
        vec!["persistence"]
    }

    fn info(&self, _ks: &Keyspace, section: &str) -> Option<String> {
        (section == "persistence")
            .then(|| format!("rdb_saves:{}\r\n", self.saves.load(Ordering::Relaxed)))
    }

    fn config_set(&self, _ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        (name == "save").then(|| {
            if value == b"bad" {
                Err("Invalid save parameters".into())
            } else {
                Ok(())
            }
        })
    }
}

#[test]
fn extension_commands_info_and_config() {
    let ext = Arc::new(Saver {
        saves: AtomicU64::new(0),
    });
    let ks = Keyspace::builder().extension(ext).build();
    let mut s = ks.session();
    s.command(&["set", "a", "1"]);
    assert_eq!(s.command(&["SAVE"]), Frame::Integer(1));
    assert_eq!(s.command(&["lastsave"]), Frame::Integer(1));
    // A view from a non-EXCLUSIVE command is refused instead of deadlocking.
    assert_eq!(
        s.command(&["badsave"]),
        Frame::error(
            "ERR keyspace view error: a view can only be taken outside commands or by an EXCLUSIVE command"
        )
    );
    assert!(ks.view().is_ok(), "the refused attempt left no view behind");
    assert_eq!(
        s.command(&["save", "x"]),
        Frame::error("ERR wrong number of arguments for 'save' command")
    );
    let Frame::Verbatim { text, .. } = s.command(&["info", "persistence"]) else {
        panic!()
    };
    assert_eq!(
        String::from_utf8_lossy(&text),
        "# Persistence\r\nrdb_saves:1\r\n"
    );
    assert_eq!(s.command(&["config", "set", "save", "900 1"]), Frame::ok());
    assert_eq!(
        s.command(&["config", "get", "save"]),
        Frame::Map(vec![(Frame::bulk("save"), Frame::bulk("900 1"))])
    );
    assert_eq!(
        s.command(&["config", "set", "save", "bad"]),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"
        )
    );
    assert_eq!(
        s.command(&["config", "set", "foo", "bar"]),
        Frame::error("ERR Unknown option or number of arguments for CONFIG SET - 'foo'")
    );
    let Frame::Array(info) = s.command(&["command", "info", "save"]) else {
        panic!()
    };
    assert!(matches!(&info[0], Frame::Array(v) if v[0] == Frame::bulk("save")));
}

#[test]
fn subcommand_errors_match_redis() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["client"]),
        Frame::error("ERR wrong number of arguments for 'client' command")
    );
    assert_eq!(
        s.command(&["client", "foo"]),
        Frame::error("ERR unknown subcommand 'foo'. Try CLIENT HELP.")
    );
    assert_eq!(
        s.command(&["client", "setname"]),
        Frame::error("ERR wrong number of arguments for 'client|setname' command")
    );
    assert_eq!(
        s.command(&["config", "get"]),
        Frame::error("ERR wrong number of arguments for 'config|get' command")
    );
    assert_eq!(
        s.command(&["config", "foo"]),
        Frame::error("ERR unknown subcommand 'foo'. Try CONFIG HELP.")
    );
    assert_eq!(
        s.command(&["command", "count", "x"]),
        Frame::error("ERR wrong number of arguments for 'command|count' command")
    );
    assert_eq!(
        s.command(&["client", "setname", "a b"]),
        Frame::error("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(
        s.command(&["flushall", "x"]),
        Frame::error("ERR syntax error")
    );
    assert_eq!(
        s.command(&["swapdb", "0", "x"]),
        Frame::error("ERR invalid second DB index")
    );
    assert_eq!(
        s.command(&["auth", "a"]),
        Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
        )
    );
    let r = s.command(&["scan", "-1"]);
    let Frame::Array(r) = r else { panic!("{r:?}") };
    assert_eq!(r[0], Frame::bulk("0"));
}

#[test]
fn service_sessions_count_clients_and_quit_closes() {
    let ks = Keyspace::new();
    let info = |id| ConnInfo {
        id,
        peer: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:6379".parse().unwrap(),
    };
    let (mut a, _rx_a) = ks.open(info(7));
    let (b, _rx_b) = ks.open(info(8));
    assert_eq!(ks.connected_clients(), 2);
    let Outcome::Reply(Frame::Integer(7)) = a.call(vec![Bytes::from("client"), Bytes::from("id")])
    else {
        panic!()
    };
    let Outcome::Close(reply) = a.call(vec![Bytes::from("QUIT")]) else {
        panic!()
    };
    assert_eq!(reply, Frame::ok());
    a.closed();
    a.closed();
    assert_eq!(ks.connected_clients(), 1);
    drop(b);
    drop(a);
    assert_eq!(ks.connected_clients(), 0);
}
