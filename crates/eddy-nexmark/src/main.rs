//! `nexmark`: the Nexmark benchmark on the embedded MiniCluster (see [`eddy_nexmark::cli`]):
//! `nexmark --query q5 --events N [-p P]`, `nexmark bench […]`, `nexmark cost […]`.

fn main() -> anyhow::Result<()> {
    eddy_nexmark::cli::main(std::env::args().skip(1).collect(), &[])
}
