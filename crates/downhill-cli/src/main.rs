//! `downhill`: train, compare and look at the optimisers that train neural
//! networks. A thin layer over the library crates: parse, validate, run.

mod advise;
mod compare;
mod export;
mod landscape;
#[cfg(feature = "mpi")]
mod parallel;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Optimisers for neural networks: train with any of them, compare them on
/// your data, and see how they move on test functions.
#[derive(Parser, Debug)]
#[command(name = "downhill", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model on a data set with one optimiser.
    Train(Box<train::TrainArgs>),
    /// Compare optimisers on the same model, data and initial weights; curves and a report.
    Compare(Box<compare::CompareArgs>),
    /// Explain which optimiser family fits a data set (and race them with --race).
    Advise(Box<advise::AdviseArgs>),
    /// See optimisers move on 2-D test functions, test convexity, slice a trained model's loss.
    Landscape(Box<landscape::LandscapeArgs>),
    /// Write a trained model in torch's and candle's layout and names.
    Export(export::ExportArgs),
    /// List the optimisers with their hyper-parameters and defaults.
    Optimizers(OptimizersArgs),
    /// List the learning-rate schedules with their hyper-parameters.
    Schedules,
}

/// `downhill optimizers`.
#[derive(clap::Args, Debug)]
struct OptimizersArgs {
    /// Print one Markdown table instead: spec, paper, reference
    /// implementation, when to use it (the README's table).
    #[arg(long)]
    markdown: bool,
}

/// A user error: printed as one line, exit status 2.
#[derive(Debug)]
pub struct UserError(pub String);

impl<E: std::fmt::Display> From<E> for UserError {
    fn from(e: E) -> Self {
        UserError(e.to_string())
    }
}

/// Writing to a closed pipe (`downhill optimizers | head`) ends the process
/// quietly, as it does other Unix tools, instead of a panic in `println!`:
/// Rust starts programs with SIGPIPE ignored.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` only resets
    // the disposition; it runs first thing in `main`, before any other
    // thread exists that could race on signal state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // A usage error: what comes before clap's "Usage:" names the
            // problem; keep it to one line.
            let text = e.render().to_string();
            let problem: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see --help)", problem.join(" "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Train(args) => train::run(*args),
        Command::Compare(args) => compare::run(*args),
        Command::Advise(args) => advise::run(*args),
        Command::Landscape(args) => landscape::run(*args),
        Command::Export(args) => export::run(args),
        Command::Optimizers(a) if a.markdown => {
            print!("{}", optimizer_table());
            Ok(())
        }
        Command::Optimizers(_) => list_optimizers(),
        Command::Schedules => list_schedules(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(UserError(msg)) => {
            // One line, whatever it quotes: a path or a setting the user
            // gave may hold a line break.
            eprintln!("error: {}", downhill::error::printable(msg.trim_end()));
            ExitCode::from(2)
        }
    }
}

fn print_hyper(infos: &[downhill::hyper::HyperInfo]) {
    for h in infos {
        println!("    {:<28} {:<14} {}", h.name, h.default.to_string(), h.doc);
    }
}

/// Every registered optimiser as a Markdown table: spec, paper, the
/// reference it is verified against, when to use it.
fn optimizer_table() -> String {
    let mut out =
        String::from("| spec | paper | verified against | use it when |\n|---|---|---|---|\n");
    for e in downhill::optim::REGISTRY {
        out += &format!(
            "| `{}` | {} | {} | {} |\n",
            e.name, e.paper, e.reference, e.use_when
        );
    }
    out
}

fn list_optimizers() -> Result<(), UserError> {
    use downhill::optim::REGISTRY;
    for (title, elementwise) in [
        (
            "Element-wise: one fused pass over memory; lazy row-sparse steps on sparse data",
            true,
        ),
        (
            "Tensor-level: whole-tensor norms and statistics; Muon runs matrix products",
            false,
        ),
    ] {
        println!("{title}\n");
        for e in REGISTRY.iter().filter(|e| e.elementwise == elementwise) {
            println!("{}  (use when: {})", e.name, e.use_when);
            print_hyper(&(e.describe)());
        }
        println!();
    }
    println!("Composed by role: partition(ROLES=SPEC,...)\n");
    println!("    ROLES is one of hidden, input, output, bias, conv, or several joined by +;");
    println!("    all takes every parameter no other part names. Every parameter needs a part.");
    println!("    partition(hidden=muon(lr=0.02),all=adamw(lr=0.001))");
    println!("    partition(hidden+conv=muon,input+output=adamw,bias=sgd(lr=0.01))");
    println!("    muon alone means partition(hidden=muon(...),all=adamw), as Keras and the Muon");
    println!("    authors use it; the run's header lists which parameter got which rule.");
    println!();
    use downhill::hyper::Hyper;
    println!("Wrappers: lookahead(SPEC,k=5,alpha=0.5) around any spec above, partitions too\n");
    println!("lookahead  (use when: a fast optimiser is noisy or unstable: slow weights smooth its path)");
    print_hyper(&downhill::optim::LookaheadConfig::describe());
    println!();
    println!("lbfgs  (full batch, one call of up to max_iter iterations per epoch)");
    print_hyper(&downhill::lbfgs::LbfgsConfig::describe());
    println!("newton  (full batch, exact Hessian; logistic regression of up to 2000 parameters)");
    print_hyper(&downhill::newton::Newton::describe());
    Ok(())
}

fn list_schedules() -> Result<(), UserError> {
    for name in downhill::schedule::SCHEDULES {
        println!("{name}");
        match *name {
            "constant" => println!("    (the optimizer's learning rate, unchanged)"),
            "sequentiallr" => {
                println!("    sequentiallr(SCHEDULE,SCHEDULE,...,milestones=M1,M2,...)")
            }
            _ => print_hyper(&downhill::schedule::describe(name)?),
        }
    }
    Ok(())
}
