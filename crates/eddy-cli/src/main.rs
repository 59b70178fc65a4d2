//! The generic `eddy` binary: the CLI with the built-in jobs (the examples).

fn main() -> std::process::ExitCode {
    eddy_cli::main_with(eddy_cli::jobs::builtin())
}
