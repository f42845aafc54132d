//! The `kim` binary: parse the command line and run the subcommand.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    kim::cli::main()
}
