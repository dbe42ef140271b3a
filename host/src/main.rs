fn main() {
    std::process::exit(xp::cli::main());
}
