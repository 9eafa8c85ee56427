//! The `beacon` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use beacon::config::Config;

/// Beacon: on-site alarm for emergency calls placed from Microsoft Teams.
///
/// Teams posts an "important" chat message when someone dials an emergency number; Graph
/// delivers it into an Azure Event Hub; Beacon reads the hub over the Kafka protocol,
/// recognises the emergency and raises the alarm.
#[derive(Parser)]
#[command(name = "beacon", version, about, long_about, after_help = EXIT_STATUSES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance service: consume the Event Hub until SIGTERM or Ctrl-C.
    Run {
        /// Configuration file (TOML); BEACON_* variables override single keys.
        #[arg(long, env = "BEACON_CONFIG", default_value = "/etc/beacon/beacon.toml")]
        config: PathBuf,
    },
    /// Sign the Teams service account in (device code): prints the code and the address to
    /// open on any device, waits, and prints the signed-in account.
    Login {
        /// Configuration file (TOML).
        #[arg(long, env = "BEACON_CONFIG", default_value = "/etc/beacon/beacon.toml")]
        config: PathBuf,
    },
    /// Join the fleet of another Beacon (a backup desk, another site): with the join code its
    /// settings page shows, fetch the fleet's secrets from its console over HTTPS. Stop the
    /// service first.
    FleetJoin {
        /// Configuration file (TOML).
        #[arg(long, env = "BEACON_CONFIG", default_value = "/etc/beacon/beacon.toml")]
        config: PathBuf,
        /// The other Beacon's console, e.g. https://beacon-main.local:8443
        #[arg(long)]
        from: String,
        /// The join code (XXXX-XXXX-XXXX.PIN), good for ten minutes and one box.
        #[arg(long)]
        code: String,
    },
    /// Check a configuration file (and BEACON_* variables) and print what it resolves to, and
    /// which settings the setup wizard saved over it. Exit 0 valid (unknown keys are warnings,
    /// as `beacon run` ignores them), 78 invalid. Secrets are never printed.
    CheckConfig {
        /// Configuration file (TOML).
        path: PathBuf,
    },
    /// Classify a Graph chatMessage (JSON file) and print the classification and the
    /// extracted call as JSON. Exit 0 emergency/test/possible, 1 not an emergency, 2 bad input.
    /// Also takes a change-notification collection with encrypted content plus --key.
    Parse {
        /// chatMessage JSON, or a notification collection with encryptedContent.
        file: PathBuf,
        /// Object id of the service account (its own messages are never emergencies).
        #[arg(long)]
        service_account: Option<String>,
        /// The chat's type when known (group, oneOnOne, meeting).
        #[arg(long)]
        chat_type: Option<String>,
        /// PEM private key to decrypt a rich notification.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Configuration file whose [emergency] rules apply (default: built-in rules).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the whole appliance on this machine without Azure: simulated board, a built-in
    /// replay of a realistic emergency notification every few minutes (and on a button), and
    /// the console on http://127.0.0.1:8080 with a printed login. Ctrl-C ends it.
    Demo {
        /// Console address (loopback; plain HTTP).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Seconds between demonstration calls (0: only on the page's button).
        #[arg(long, default_value_t = 180)]
        every: u64,
        /// Seconds until the first demonstration call.
        #[arg(long, default_value_t = 15)]
        first_after: u64,
    },
    /// Feed Event Hub record bodies (one JSON document a line) through the real ingest
    /// pipeline without Kafka, for drills, demos and tests. Prints a JSON summary.
    Replay {
        /// File of record bodies, one per line (JSON Lines).
        file: PathBuf,
        /// Directory of chatMessage files (`<message-id>.json`) for basic notifications,
        /// instead of fetching them from Graph.
        #[arg(long)]
        fixtures: Option<PathBuf>,
        /// Configuration file (TOML).
        #[arg(long, env = "BEACON_CONFIG", default_value = "/etc/beacon/beacon.toml")]
        config: PathBuf,
    },
}

/// The exit statuses, as sysexits.h names them (systemd's `RestartPreventExitStatus=` and
/// scripts read them).
mod exit {
    /// EX_USAGE: the command line is wrong.
    pub const USAGE: u8 = 64;
    /// EX_DATAERR: an input file is wrong (`beacon replay`).
    pub const DATA: u8 = 65;
    /// EX_UNAVAILABLE: a service Beacon needs could not be used (Event Hub, Graph).
    pub const UNAVAILABLE: u8 = 69;
    /// EX_SOFTWARE: a panic (the outputs were de-energised first).
    pub const SOFTWARE: u8 = beacon::hw::failsafe::PANIC_EXIT_CODE as u8;
    /// EX_OSERR: the operating system refused (the runtime did not start).
    pub const OS: u8 = 71;
    /// EX_CANTCREAT: the data directory or store cannot be created or opened.
    pub const CANT_CREATE: u8 = 73;
    /// EX_CONFIG: the configuration is wrong.
    pub const CONFIG: u8 = 78;
}

const EXIT_STATUSES: &str = "\
Exit status (sysexits.h):
  0   success
  1   parse: not an emergency          2   parse: unreadable input
  64  the command line is wrong         65  an input file is wrong (replay)
  69  a service was unavailable         70  a panic (outputs de-energised first)
  71  the operating system refused      73  the data directory or store cannot be opened
  78  the configuration is wrong (check-config, login, replay)
`beacon run` does not stop on a bad configuration: it runs the last good one (or the safe
defaults) and shows the error as a trouble.";

/// Why a command failed: its exit status and the words.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl std::fmt::Display) -> Failure {
        Failure {
            code,
            message: message.to_string(),
        }
    }
}

impl From<beacon::app::AppError> for Failure {
    fn from(error: beacon::app::AppError) -> Failure {
        use beacon::app::AppError;
        let code = match &error {
            AppError::Store(_) => exit::CANT_CREATE,
            AppError::Key(_) => exit::SOFTWARE,
            AppError::Connection(_) | AppError::Config(_) => exit::CONFIG,
            AppError::Consumer(_) => exit::UNAVAILABLE,
            AppError::Replay { .. } => exit::DATA,
        };
        Failure::new(code, error)
    }
}

fn main() -> ExitCode {
    // Everything the process creates (the store above all) is private to its user.
    // SAFETY: umask only changes the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return if usage {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::CheckConfig { path } => check_config(&path),
        Command::Parse {
            file,
            service_account,
            chat_type,
            key,
            config,
        } => parse(&file, service_account, chat_type, key, config.as_deref()),
        Command::FleetJoin { config, from, code } => with_runtime(|| async move {
            let config = load(&config)?;
            let fleet = beacon::app::fleet_join(config, &from, &code)
                .await
                .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
            println!(
                "Joined fleet {fleet}. Start the service: it adopts the fleet's subscription."
            );
            Ok(ExitCode::SUCCESS)
        }),
        Command::Login { config } => with_runtime(|| async move {
            let config = load(&config)?;
            let account = beacon::app::login(config, |prompt| {
                let minutes = (prompt.expires_at - chrono::Utc::now()).num_minutes();
                println!(
                    "To sign the service account in, open {} and enter the code {}",
                    prompt.verification_uri, prompt.user_code
                );
                if let Some(message) = &prompt.message {
                    println!("({message})");
                }
                println!("The code is valid for {minutes} minutes. Waiting…");
            })
            .await?;
            println!(
                "Signed in as {} ({}), object id {}",
                account.display_name.as_deref().unwrap_or("?"),
                account.upn.as_deref().unwrap_or("?"),
                account.id
            );
            Ok(ExitCode::SUCCESS)
        }),
        Command::Run { config } => with_runtime(|| async move {
            // A panic anywhere de-energises the outputs and exits for a restart: a caught
            // panic would leave a silent appliance (a dead alarm task) behind.
            beacon::hw::failsafe::install_panic_hook();
            debug_panic_on_sigusr2();
            beacon::app::run_from_file(&config).await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Demo {
            listen,
            every,
            first_after,
        } => with_runtime(|| async move {
            if !listen.ip().is_loopback() {
                return Err(Failure::new(
                    exit::USAGE,
                    "the demo serves plain HTTP: use a loopback address (127.0.0.1)",
                ));
            }
            let options = beacon::app::demo::DemoOptions {
                listen,
                every: std::time::Duration::from_secs(every),
                first_after: std::time::Duration::from_secs(first_after),
            };
            beacon::app::demo::run(options, |url, user, password| {
                let then = if every == 0 {
                    "then only".to_string()
                } else {
                    format!("then every {every} s and")
                };
                // Not println!: a closed stdout (a reader that went away) must not end the demo.
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = writeln!(
                    out,
                    "Beacon demo: open {url} and log in as {user} with password {password}"
                );
                let _ = writeln!(out, "A demonstration emergency call plays in {first_after} s, {then} on the dashboard's button. Ctrl-C ends the demo.");
                let _ = out.flush();
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Replay {
            file,
            fixtures,
            config,
        } => with_runtime(|| async move {
            let config = load(&config)?;
            let summary = beacon::app::replay(config, &file, fixtures.as_deref()).await?;
            print_json(&summary);
            Ok(ExitCode::SUCCESS)
        }),
    }
}

fn parse(
    file: &std::path::Path,
    service_account: Option<String>,
    chat_type: Option<String>,
    key: Option<PathBuf>,
    config: Option<&std::path::Path>,
) -> ExitCode {
    // The file's rules as its load checked them; the built-in rules without a file.
    let checked = match config.map(load).transpose() {
        Ok(config) => config
            .unwrap_or_default()
            .checked()
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.message),
    };
    let rules = match checked {
        Ok(checked) => checked.rules.clone(),
        Err(e) => {
            eprintln!("beacon: {e}");
            return ExitCode::from(2);
        }
    };
    let options = beacon::commands::ParseOptions {
        service_account,
        chat_type,
        key,
    };
    match beacon::commands::parse(file, &options, &rules) {
        Ok((report, code)) => {
            print_json(&report);
            ExitCode::from(u8::try_from(code).unwrap_or(2))
        }
        Err(message) => {
            eprintln!("beacon: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints pretty JSON; a closed pipe (`| head`) is not an error worth a panic.
fn print_json(value: &impl serde::Serialize) {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn load(path: &std::path::Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|e| Failure::new(exit::CONFIG, e))
}

fn check_config(path: &std::path::Path) -> ExitCode {
    let loaded = match Config::load_tolerant(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("beacon: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let config = loaded.config;
    println!("{}: valid", path.display());
    for ignored in &loaded.ignored {
        println!("  warning: ignored (beacon run leaves it out and shows a trouble): {ignored}");
    }
    let device = config.device_id.clone();
    println!(
        "  device id:          {}",
        device.as_deref().unwrap_or("(generated on first start)")
    );
    println!("  data directory:     {}", config.data_dir.display());
    match config.eventhub_target() {
        Ok(target) => {
            println!(
                "  event hub:          {} (topic '{}')",
                target.namespace(),
                target.topic()
            );
            println!("  bootstrap:          {}", target.bootstrap);
            println!("  access policy:      {}", target.key_name);
            println!("  connection string:  set (not shown)");
            let group = device
                .map(|d| config.consumer_group(&d))
                .unwrap_or_else(|| {
                    config
                        .eventhub
                        .consumer_group
                        .clone()
                        .unwrap_or_else(|| "beacon-<device-id>".into())
                });
            println!("  consumer group:     {group}");
            if group == "$Default" {
                println!("  warning: consumer group $Default is shared with every other reader of the hub; each appliance should have its own");
            }
        }
        Err(e) => println!("  event hub:          not usable yet: {e}"),
    }
    println!("  graph:              {}", config.graph.graph_url);
    if let Some(warning) = config.secret_expiry_warning(chrono::Utc::now().date_naive()) {
        println!("  warning: {warning}");
    }
    println!(
        "  client secret:      {}",
        if config.graph.client_secret.is_some() {
            "set (not shown)"
        } else {
            "not set"
        }
    );
    print_store_overrides(&config.data_dir);
    ExitCode::SUCCESS
}

/// What the setup wizard saved over the file, from the store's keepsake (readable while the
/// service holds the store itself locked).
fn print_store_overrides(data_dir: &std::path::Path) {
    use beacon::store::keepsake::Keepsake;
    match Keepsake::read(data_dir) {
        Ok(Some(kept)) => {
            let overrides = beacon::cloud_settings::overridden_keys(&kept);
            if overrides.is_empty() {
                println!("  setup wizard:       nothing saved over the file");
            } else {
                println!("  setup wizard:       saved in the store, overriding the file:");
                for key in overrides {
                    println!("                      {key}");
                }
            }
        }
        Ok(None) => println!(
            "  setup wizard:       no store in {} yet (nothing overrides the file)",
            data_dir.display()
        ),
        Err(e) => println!("  setup wizard:       cannot tell: {e}"),
    }
}

/// A debug switch for the GPIO VM test (`scripts/vm-gpio`) and nothing else: with
/// `BEACON_TEST_PANIC_ON_SIGUSR2=1` in its environment, `beacon run` panics on SIGUSR2, so
/// the fail-safe panic hook can be proven from outside on a real kernel. Without the variable
/// SIGUSR2 keeps its default action (the process ends) and nothing here runs. (`BEACON_TEST_`:
/// other `BEACON_*` names are configuration overrides, and an unknown one stops the start.)
fn debug_panic_on_sigusr2() {
    if std::env::var("BEACON_TEST_PANIC_ON_SIGUSR2").as_deref() != Ok("1") {
        return;
    }
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2()) {
        Ok(mut usr2) => {
            tracing::warn!(
                "debug switch BEACON_TEST_PANIC_ON_SIGUSR2=1: SIGUSR2 panics this process"
            );
            tokio::spawn(async move {
                if usr2.recv().await.is_some() {
                    panic!("BEACON_TEST_PANIC_ON_SIGUSR2: SIGUSR2 received, panicking as asked");
                }
            });
        }
        Err(e) => {
            tracing::error!(error = %e, "debug switch BEACON_TEST_PANIC_ON_SIGUSR2: cannot catch SIGUSR2")
        }
    }
}

fn with_runtime<F, Fut>(body: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("beacon: cannot start the runtime: {e}");
            return ExitCode::from(exit::OS);
        }
    };
    match runtime.block_on(body()) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("beacon: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BEACON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: the journal and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
