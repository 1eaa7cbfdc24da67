//! The `tenure` command. Everything lives in the `tenure_cli` library;
//! this parses the arguments, runs, and exits with the code it returned.

use clap::Parser;

fn main() {
    // The first step of starting a command under `campaign` (see
    // `tenure_cli::child`): not a user-facing command.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw
        .get(1)
        .is_some_and(|a| a == tenure_cli::child::EXEC_HELPER)
    {
        std::process::exit(tenure_cli::child::exec_helper(&raw[2..]));
    }
    // The process that supervises the command's tree (same module).
    if raw
        .get(1)
        .is_some_and(|a| a == tenure_cli::child::SUPERVISOR)
    {
        std::process::exit(tenure_cli::child::supervisor_main(&raw[2..]));
    }
    // Usage errors exit 2 here, `--help` and `--version` exit 0.
    let cli = tenure_cli::args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenure: cannot start the async runtime: {e}");
            std::process::exit(tenure_cli::Exit::Backend.code());
        }
    };
    let code = runtime.block_on(tenure_cli::run(cli));
    // Everything that must be released (child, entry, lease) was released
    // before `run` returned; do not wait for background tasks.
    runtime.shutdown_background();
    std::process::exit(code);
}
