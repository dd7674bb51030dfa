//! Man pages from the binaries' own clap definitions (`clap_mangen`): each binary calls
//! [`generate_if_asked`] first thing, so `<binary> --generate-man DIR` writes its page, and
//! one per subcommand (`dpvsctl-service.1`, ...), into DIR and exits. `scripts/man.sh` makes
//! every page of the project this way.
#![forbid(unsafe_code)]

use std::ffi::OsStr;

/// With `--generate-man DIR` as the only arguments: writes the man pages of `command()` into
/// DIR and exits (0, or 1 on a write error). Otherwise returns and the binary runs.
pub fn generate_if_asked(command: impl FnOnce() -> clap::Command) {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new("--generate-man")) {
        return;
    }
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: --generate-man DIR");
        std::process::exit(2);
    };
    let cmd = command();
    let name = cmd.get_name().to_owned();
    match std::fs::create_dir_all(&dir).and_then(|()| clap_mangen::generate_to(cmd, &dir)) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{name}: cannot write man pages into {}: {e}", std::path::Path::new(&dir).display());
            std::process::exit(1);
        }
    }
}
