//! The command line, as clap derive types. Parsing only; no I/O.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Backends (--backend or TENURE_BACKEND):
  memory://[name]                        in-process (one process only: demos, tests)
  etcd://host:port[,host:port][/prefix]  etcd v3; etcds:// for TLS
  zk://host:port[,host:port][/root]      ZooKeeper 3.6 or newer; zks:// for TLS
  postgres://user@host:port/db[?schema=] PostgreSQL 11 or newer (postgresql:// too)

Credentials stay off the command line: --password-file (with --user) reads the
password from a file; --cacert, --cert and --key name PEM files (etcds://,
zks://). Each flag fills the URL option of the same meaning (password_file=,
ca=, cert=, key=, server_name=); giving both is refused. See docs/security.md.

Exit codes:
  0        success; clean shutdown on SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1
  1        `leader`: the election has no leader
  2        usage or invalid input (arguments, election name, TTL, URL, an unreadable or
           malformed password or PEM file, backend not compiled in)
  3        backend unreachable, credentials or certificate rejected (TLS), timeout, other
           backend error
  4        `campaign --once`: leadership lost
  126/127  `campaign -- CMD`: CMD is not executable / not found (checked before campaigning)
  other    `campaign --once -- CMD`: CMD ended by itself; its exit code (128 + signal if killed)";

const CAMPAIGN_HELP: &str = "\
Without a command, holds leadership until a shutdown signal (SIGINT, SIGTERM,
SIGHUP, SIGQUIT or SIGUSR1: then resigns and exits 0) or until it is lost
(then campaigns again, or exits 4 with --once).

With `-- CMD ARGS...`, starts CMD when elected, with TENURE_ELECTION,
TENURE_PROPOSAL, TENURE_TOKEN (the fencing token) and TENURE_LEASE (hex) in
its environment, under a supervisor process that every process CMD starts
stays under (a child subreaper: even processes that call setsid or fork
twice). \"CMD's tree\" below is all of them.

The moment leadership is lost at the local deadline, CMD's tree gets SIGTERM,
then SIGKILL when --grace has passed since the deadline; a loss the backend
reports (lease expired, entry deleted) means a successor may already be
elected: SIGKILL at once. Then tenure campaigns again (or exits 4 with
--once). If CMD ends by itself, what it left running gets SIGTERM (SIGKILL
after --grace), tenure resigns, then exits with CMD's status under --once or
campaigns again after --recampaign-delay. On a shutdown signal, tenure stops
CMD's tree first and resigns after, so a successor never overlaps it.

--grace must fit in the safety margin: the leader steps down TTL/5 before
the backend can elect a successor, and the grace may take half of that
(TTL/10, also the default). A longer --grace is refused (exit 2).

If tenure dies however it dies (kill -9 included), the supervisor kills
CMD's tree at once. It also kills it by itself at the deadline plus the
grace if tenure cannot (frozen by SIGSTOP, say). Ctrl-Z (SIGTSTP) stops CMD's
tree, then tenure; on SIGCONT, tenure resumes CMD only if it still leads,
and otherwise kills it without letting it run again. With --output json,
CMD's standard output goes to tenure's standard error, so that standard
output carries only events.";

/// Leader election from the command line: campaign, run a command only
/// while leader, watch who leads.
#[derive(Debug, Parser)]
#[command(name = "tenure", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (before or after the command name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Backend URL: `memory://[name]`, `etcd://host:port[,..][/prefix]`,
    /// `etcds://..`, `zk://host:port[,..][/root]`,
    /// `postgres://user@host:port/db[?schema=..]`.
    #[arg(long, env = "TENURE_BACKEND", global = true, value_name = "URL")]
    pub backend: Option<String>,
    /// Format of the events on standard output.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,
    /// Log filter for standard error: error, warn, info, debug, trace, or
    /// tracing directives such as `tenure=debug`.
    #[arg(long, default_value = "warn", global = true, value_name = "FILTER")]
    pub log_level: String,
    /// Format of the log lines on standard error: `text`, or `json` (one
    /// object per line, with the spans naming election and lease).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Deadline of each backend request, and of connecting (default:
    /// connect 5 s, requests TTL / 3).
    #[arg(long, value_parser = parse_duration, global = true, value_name = "DURATION")]
    pub request_timeout: Option<Duration>,
    /// Credentials and TLS files, added to the backend URL's options.
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// Credentials and TLS files: each fills the backend URL option of the
/// same meaning, so that no secret needs to be on the command line.
#[derive(Debug, Default, Args)]
pub struct SecurityArgs {
    /// User name for etcd auth or ZooKeeper digest auth (URL option
    /// `user=`); the password comes from --password-file.
    #[arg(long, env = "TENURE_USER", global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// File holding the password of --user (URL option `password_file=`):
    /// read once at start, never printed, logged or passed to CMD.
    #[arg(long, env = "TENURE_PASSWORD_FILE", global = true, value_name = "PATH")]
    pub password_file: Option<String>,
    /// PEM file of the CA that signed the servers' certificates (URL
    /// option `ca=`; etcds:// and zks://).
    #[arg(long, env = "TENURE_CACERT", global = true, value_name = "PATH")]
    pub cacert: Option<String>,
    /// PEM file of the client certificate, for servers that require one
    /// (URL option `cert=`; with --key).
    #[arg(long, env = "TENURE_CERT", global = true, value_name = "PATH")]
    pub cert: Option<String>,
    /// PEM file of the client certificate's private key (URL option
    /// `key=`; with --cert).
    #[arg(long, env = "TENURE_KEY", global = true, value_name = "PATH")]
    pub key: Option<String>,
    /// The name the server certificate must carry, when it differs from
    /// the host in the URL (URL option `server_name=`; etcds:// only).
    /// Certificates are always verified.
    #[arg(long, env = "TENURE_SERVER_NAME", global = true, value_name = "NAME")]
    pub server_name: Option<String>,
}

impl SecurityArgs {
    /// The URL options these flags stand for, in URL order.
    pub fn url_options(&self) -> Vec<(&'static str, &str)> {
        [
            ("user", &self.user),
            ("password_file", &self.password_file),
            ("ca", &self.cacert),
            ("cert", &self.cert),
            ("key", &self.key),
            ("server_name", &self.server_name),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// Format of the events on standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable lines: `elected scheduler token=42 proposal=node-a`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Format of the log lines on standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines, coloured only when standard error is a terminal.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields`, `spans`.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Campaign for leadership; optionally run a command only while leader.
    #[command(after_help = CAMPAIGN_HELP)]
    Campaign(CampaignArgs),
    /// Print one line per leader change (including "no leader") until interrupted.
    Observe(ObserveArgs),
    /// Print the current leader; exit 1 if there is none.
    Leader(ReadArgs),
    /// Print the candidates in queue order, the leader first.
    List(ReadArgs),
}

/// How candidates decide who leads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// One entry per candidate, lowest leads (etcdctl elect, Curator, kazoo).
    #[default]
    Queue,
    /// First writer of one leader key wins.
    SingleKey,
}

impl From<StrategyArg> for tenure::Strategy {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::Queue => tenure::Strategy::Queue,
            StrategyArg::SingleKey => tenure::Strategy::SingleKey,
        }
    }
}

/// `tenure campaign`.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// The election, e.g. `scheduler` or `jobs/shard-7`.
    pub election: String,
    /// The value others see while we campaign and lead (default
    /// `<hostname>:<pid>`).
    pub proposal: Option<String>,
    /// Lease TTL: failover after a crash takes about this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub ttl: Duration,
    /// Exit after one term instead of campaigning again: 4 when
    /// leadership is lost, the command's status when it ends by itself.
    #[arg(long)]
    pub once: bool,
    /// How long the command (its whole tree) gets between SIGTERM and
    /// SIGKILL [default: TTL/10, the most that fits in the safety margin;
    /// a longer one is refused].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub grace: Option<Duration>,
    /// Pause before campaigning again after a term ends (plus up to a
    /// quarter more of random jitter), so a crashing command does not spin.
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub recampaign_delay: Duration,
    /// How candidates decide who leads. An election holds one strategy at
    /// a time: while candidates of the other one hold it, this candidate
    /// is refused ("... cannot join it").
    #[arg(long, value_enum, default_value_t = StrategyArg::Queue)]
    pub strategy: StrategyArg,
    /// The HTTP server for probes and metrics.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// The command to run while leader, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `--listen`: the HTTP server of `campaign` and `observe`.
#[derive(Debug, Default, Args)]
pub struct ListenArgs {
    /// Serve `/healthz`, `/readyz` and `/metrics` (Prometheus) over HTTP
    /// on this address, e.g. `127.0.0.1:9090` or `[::]:9090`; port 0
    /// picks a free port. The bound address is printed first, as a
    /// `listening` event.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// `tenure observe`.
#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// The election; with `--all`, a name prefix (`jobs/`; every
    /// election when left out).
    #[arg(required_unless_present = "all")]
    pub election: Option<String>,
    /// Follow every election whose name starts with the prefix: one line
    /// per leader change of any of them; with `--listen`, a status page
    /// of them all at `/`.
    #[arg(long)]
    pub all: bool,
    /// Kept for scripts: readers see the leader of either strategy (an
    /// election holds one at a time), whatever this says.
    #[arg(long, value_enum, default_value_t = StrategyArg::Queue)]
    pub strategy: StrategyArg,
    /// Once the backend has not confirmed a leader for this long (frozen,
    /// unreachable), print `unknown` instead of going on showing the last
    /// leader as current. Set it to the candidates' `--ttl`: past it,
    /// their leader may be gone.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub max_staleness: Duration,
    /// The HTTP server for probes, metrics and (with `--all`) the status
    /// page.
    #[command(flatten)]
    pub listen: ListenArgs,
}

impl ObserveArgs {
    /// The election (or prefix) given, `""` when none was.
    pub fn name(&self) -> &str {
        self.election.as_deref().unwrap_or_default()
    }

    /// The options as a one-election read.
    pub fn read_args(&self) -> ReadArgs {
        ReadArgs {
            election: self.name().to_owned(),
            strategy: self.strategy,
            max_staleness: self.max_staleness,
        }
    }
}

/// `tenure observe`, `tenure leader`, `tenure list`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The election.
    pub election: String,
    /// Kept for scripts: readers see the leader of either strategy (an
    /// election holds one at a time), whatever this says.
    #[arg(long, value_enum, default_value_t = StrategyArg::Queue)]
    pub strategy: StrategyArg,
    /// `observe`: once the backend has not confirmed the leader for this
    /// long (frozen, unreachable), print `unknown` instead of going on
    /// showing the last leader as current. Set it to the candidates'
    /// `--ttl`: past it, their leader may be gone.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub max_staleness: Duration,
}

/// Parses `500ms`, `2s`, `1m`, `1m30s`.
///
/// # Errors
/// A message naming the rejected text.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?} ({e}); use e.g. 500ms, 2s, 1m"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tenure").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn campaign_with_command_and_options() {
        let cli = parse(&[
            "--backend",
            "memory://",
            "campaign",
            "scheduler",
            "node-a",
            "--ttl",
            "2s",
            "--once",
            "--grace",
            "500ms",
            "--strategy",
            "single-key",
            "--output",
            "json",
            "--",
            "sh",
            "-c",
            "echo --ttl",
        ])
        .unwrap();
        assert_eq!(cli.global.backend.as_deref(), Some("memory://"));
        assert_eq!(cli.global.output, OutputFormat::Json);
        let Command::Campaign(c) = cli.command else {
            panic!("not campaign")
        };
        assert_eq!(c.election, "scheduler");
        assert_eq!(c.proposal.as_deref(), Some("node-a"));
        assert_eq!(c.ttl, Duration::from_secs(2));
        assert!(c.once);
        assert_eq!(c.grace, Some(Duration::from_millis(500)));
        assert_eq!(c.strategy, StrategyArg::SingleKey);
        assert_eq!(c.command, ["sh", "-c", "echo --ttl"]);
    }

    #[test]
    fn campaign_defaults() {
        let cli = parse(&["campaign", "x"]).unwrap();
        let Command::Campaign(c) = cli.command else {
            panic!("not campaign")
        };
        assert_eq!(c.proposal, None);
        assert_eq!(c.ttl, Duration::from_secs(10));
        assert!(!c.once);
        assert_eq!(c.grace, None);
        assert_eq!(c.recampaign_delay, Duration::from_secs(1));
        assert_eq!(c.strategy, StrategyArg::Queue);
        assert!(c.command.is_empty());
        assert_eq!(cli.global.output, OutputFormat::Text);
    }

    #[test]
    fn durations_accept_humantime_and_reject_garbage() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        let e = parse_duration("soon").unwrap_err();
        assert!(e.contains("\"soon\""), "{e}");
        let e = parse(&["campaign", "x", "--ttl", "5 parsecs"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn read_commands_take_global_options_after_the_name() {
        let cli = parse(&[
            "leader",
            "x",
            "--backend",
            "zk://h:2181",
            "--request-timeout",
            "2s",
        ])
        .unwrap();
        assert_eq!(cli.global.backend.as_deref(), Some("zk://h:2181"));
        assert_eq!(cli.global.request_timeout, Some(Duration::from_secs(2)));
        assert!(matches!(cli.command, Command::Leader(_)));
        assert!(matches!(
            parse(&["list", "x"]).unwrap().command,
            Command::List(_)
        ));
        assert!(matches!(
            parse(&["observe", "x"]).unwrap().command,
            Command::Observe(_)
        ));
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(parse(&[]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["leader"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["frobnicate"]).unwrap_err().exit_code(), 2);
        assert_eq!(
            parse(&["observe", "x", "--output", "yaml"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes"), "{help}");
        assert!(help.contains("leadership lost"), "{help}");
    }
}
