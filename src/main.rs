//! The `kim` binary: parse the command line and run the subcommand.

#![forbid(unsafe_code)]

/// mimalloc: the store's copy-on-write pages make the accept path heavy on
/// small allocations, where glibc's allocator was a quarter of the writer
/// thread's time (see the README's benchmark notes). Built without
/// transparent huge pages (`no_thp`): resident memory is what is used, not
/// rounded up to 2 MiB pages (docs/benchmarks.md, 2026-12-02).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kim::cli::main()
}
