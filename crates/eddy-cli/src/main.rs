//! The generic `eddy` binary: the CLI with the built-in jobs (the examples).

// mimalloc: the engine's threads hand records (and their heap parts) to each other, which
// glibc's per-thread arenas handle poorly (word count 3.0 -> 5.2 M words/s on one slot).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    eddy_cli::main_with(eddy_cli::jobs::builtin())
}
