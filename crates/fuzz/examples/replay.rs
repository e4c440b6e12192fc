//! Replays one input through one fuzz check, for debugging a crash:
//! `cargo run -p cairn-fuzz --example replay -- commands crates/fuzz/regressions/commands/crash-...`
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, path] = args.as_slice() else {
        eprintln!("usage: replay <target> <file>");
        return ExitCode::FAILURE;
    };
    let Some((_, check)) = cairn_fuzz::TARGETS.iter().find(|(n, _)| n == target) else {
        eprintln!("unknown target {target}");
        return ExitCode::FAILURE;
    };
    match std::fs::read(path) {
        Ok(data) => {
            check(&data);
            println!("{target}: {path} passes");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
