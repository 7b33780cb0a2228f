fn main() -> std::process::ExitCode {
    pgha::run(std::env::args_os())
}
