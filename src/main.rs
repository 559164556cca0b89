//! The `mpscope` command line: parses arguments and dispatches to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mpscope::anatomy::{Anatomy, Overrides};
use mpscope::checkpoint::Checkpoint;
use mpscope::{Error, inspect};

/// Explore where a transformer's weights have left random initialization.
#[derive(Parser, Debug)]
#[command(
    name = "mpscope",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Checkpoint to explore: a .safetensors file, a model directory, or an HF cache repo id.
    path: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
}

/// Options every command that opens a model takes.
#[derive(Args, Debug, Clone, Default)]
struct ModelArgs {
    /// Attention heads (overrides config.json).
    #[arg(long, global = true, value_name = "N")]
    num_heads: Option<usize>,
    /// Key/value heads for GQA (overrides config.json).
    #[arg(long, global = true, value_name = "N")]
    num_kv_heads: Option<usize>,
    /// Head dimension (overrides config.json).
    #[arg(long, global = true, value_name = "N")]
    head_dim: Option<usize>,
    /// Draw with ASCII characters only.
    #[arg(long, global = true)]
    ascii: bool,
}

impl ModelArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            num_heads: self.num_heads,
            num_kv_heads: self.num_kv_heads,
            head_dim: self.head_dim,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the model summary and its layers × projections table (reads headers only).
    Inspect {
        /// Checkpoint: a .safetensors file, a model directory, or an HF cache repo id.
        path: String,
        /// Also list every tensor with dtype, shape and bytes.
        #[arg(long)]
        tensors: bool,
    },
}

fn open(path: &str, model: &ModelArgs) -> Result<(Checkpoint, Anatomy), Error> {
    let ck = Checkpoint::open(path)?;
    let an = Anatomy::from_checkpoint(&ck, &model.overrides())?;
    Ok((ck, an))
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Some(Command::Inspect { path, tensors }) => {
            let (ck, an) = open(&path, &cli.model)?;
            print!("{}", inspect::summary(&ck, &an, cli.model.ascii));
            if tensors {
                println!();
                print!("{}", inspect::tensor_list(&ck, cli.model.ascii));
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let _ = PathBuf::new();
            Err(Error::Usage(
                "the terminal explorer is not built yet; try `mpscope inspect PATH`".into(),
            ))
        }
    }
}

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("mpscope: cannot install error reporting: {e}");
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mpscope: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
