use clap::Parser;

/// Train small recurrent text models and run them on microcontrollers.
#[derive(Parser)]
#[command(name = "lstm-edge", version)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
