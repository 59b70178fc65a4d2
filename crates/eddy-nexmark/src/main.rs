//! `nexmark`: the Nexmark benchmark on the embedded MiniCluster (see [`eddy_nexmark::cli`]):
//! `nexmark --query q5 --events N [-p P]`, `nexmark bench […]`, `nexmark cost […]`.

// mimalloc: the engine's threads hand records (and their heap parts) to each other, which
// glibc's per-thread arenas handle poorly (word count 3.0 -> 5.2 M words/s on one slot).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    eddy_nexmark::cli::main(std::env::args().skip(1).collect(), &[])
}
