//! Command line (clap derive; doc comments are the help text).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Inspect a running dpvs instance through its shared memory.
///
/// Exit codes: 0 success, 1 no such instance running, 2 usage error, 3 layout version
/// mismatch between this dpvsctl and the instance, 4 other failure, 5 the primary refused
/// or failed the command.
#[derive(Debug, Parser)]
#[command(name = "dpvsctl", version)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Which instance to talk to.
#[derive(Debug, Args)]
pub struct Target {
    /// Instance name (its shared memory is `<shm-dir>/<name>.shm`).
    #[arg(short, long, global = true, default_value = "dpvs")]
    pub instance: String,
    /// Directory of the instance's shared memory.
    #[arg(long, global = true, default_value = "/dev/shm")]
    pub shm_dir: PathBuf,
    /// Take instance name and shm directory from this configuration file.
    #[arg(short, long, global = true, conflicts_with_all = ["instance", "shm_dir"])]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Instance, primary pid, uptime, layout version.
    Status,
    /// Worker processes.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Per-lcore forwarding counters and their totals, and the connection tables.
    Stats,
    /// Virtual services.
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Services with their scheduler, real servers and local addresses, as `ipvsadm -ln` shows
    /// them.
    List,
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Pid, lcore, queues, state, heartbeat age and restarts of every worker.
    List,
    /// Replace a worker with a new process without losing a packet: the successor attaches on
    /// a spare lcore id, the worker finishes its burst and hands its queues over, the
    /// successor polls on. Returns once it polls. Connection state and counters stay in
    /// shared memory.
    Restart {
        /// Worker slot (see `worker list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        slot: Option<u32>,
        /// Every worker, all at once (each still hands over without loss).
        #[arg(long)]
        all: bool,
        /// With `--all`: one worker after the other, stopping at the first failure.
        #[arg(long, conflicts_with = "slot")]
        rolling: bool,
        /// Start the new workers from this binary (an upgrade). It must speak the instance's
        /// shared-memory layout version, or it refuses to attach and the old worker keeps
        /// running.
        #[arg(long)]
        binary: Option<std::path::PathBuf>,
        /// How long to wait for the primary's answer, seconds (per worker).
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_global_flags_after_subcommands() {
        let c = Cli::try_parse_from(["dpvsctl", "worker", "list", "--json", "-i", "lb1"]).unwrap();
        assert!(c.json);
        assert_eq!(c.target.instance, "lb1");
        assert!(matches!(c.command, Command::Worker(WorkerCommand::List)));
    }

    #[test]
    fn restart_takes_a_slot() {
        let c = Cli::try_parse_from(["dpvsctl", "worker", "restart", "2"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Worker(WorkerCommand::Restart {
                slot: Some(2),
                all: false,
                rolling: false,
                binary: None,
                timeout: 30
            })
        ));
        assert!(Cli::try_parse_from(["dpvsctl", "worker", "restart", "two"]).is_err());
        assert!(Cli::try_parse_from(["dpvsctl", "worker", "restart"]).is_err(), "a slot or --all");
        assert!(Cli::try_parse_from(["dpvsctl", "worker", "restart", "1", "--all"]).is_err(), "not both");
        assert!(
            Cli::try_parse_from(["dpvsctl", "worker", "restart", "1", "--rolling"]).is_err(),
            "--rolling needs --all"
        );
        let c =
            Cli::try_parse_from(["dpvsctl", "worker", "restart", "--all", "--rolling", "--binary", "/x/w"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Worker(WorkerCommand::Restart { slot: None, all: true, binary: Some(_), .. })
        ));
    }
}
