//! The command line: `demo` (the default), `serve`, `migrate`, account administration (`users`,
//! `keys`) and the Enode simulator alone (`enode-sim`).
//! Scripts rely on the command names and on the last line of output (an id, a key).

use std::io::Write;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use evconduit_actors::tier::Tier;
use uuid::Uuid;

use crate::accounts::{self, UserSpec};
use crate::app::{App, shutdown_signal};
use crate::config::Config;
use crate::demo::{self, DemoArgs};
use crate::enode::sim::{self, SimArgs};
use crate::store::{self, Role, Store};

#[derive(Debug, Parser)]
#[command(name = "evconduit", version, about = "A shared cache between Home Assistant and the Enode EV API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service against an in-process Enode simulator, with demo users and a key (the
    /// default when no command is given).
    Demo(DemoArgs),
    /// Run the service (applies migrations first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run the Enode simulator alone: Enode's API, its token endpoint, a simulated fleet and
    /// signed webhooks, until Ctrl-C.
    EnodeSim(SimArgs),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints the new user's id alone on the last line.
    Add {
        #[arg(long)]
        email: String,
        /// Keep an existing id (a user's id is also their Enode user id, so users moved from the
        /// predecessor keep their linked cars).
        #[arg(long)]
        id: Option<Uuid>,
        #[arg(long)]
        name: Option<String>,
        /// free, basic or pro. Without it the user gets Pro on a 30-day trial.
        #[arg(long)]
        tier: Option<Tier>,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; prints the key ALONE on the last line. It is shown once.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// List a user's keys (never the keys themselves).
    List {
        #[arg(long)]
        email: String,
    },
    /// Revoke a key by its id.
    Revoke {
        #[arg(long)]
        id: Uuid,
    },
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args, config).await,
        Command::Serve => serve(config).await,
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Users(cmd) => users(cmd, &*open_store(&config).await?).await,
        Command::Keys(cmd) => keys(cmd, &*open_store(&config).await?).await,
        Command::EnodeSim(args) => sim::run_cli(args, shutdown_signal()).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = App::build(config).await?;
    // Bound only after every vehicle is restored: the first request already gets data.
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    app.serve(listener, shutdown_signal()).await
}

async fn open_store(config: &Config) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let store = store::connect(config.database_url.expose()).await.context("opening the database")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

async fn users(cmd: UsersCommand, store: &dyn Store) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        UsersCommand::Add { email, id, name, tier, admin } => {
            if !email.contains('@') {
                bail!("--email must be an email address");
            }
            let role = if admin { Role::Admin } else { Role::User };
            let now = Utc::now();
            let user = accounts::create_user(store, UserSpec { id, email, name, role, tier }, now).await?;
            match user.trial_ends_at {
                Some(ends) => writeln!(
                    out,
                    "created {} ({}, {} trial until {})",
                    user.email,
                    user.role.as_str(),
                    user.tier,
                    ends.date_naive()
                )?,
                None => writeln!(out, "created {} ({}, tier {})", user.email, user.role.as_str(), user.tier)?,
            }
            writeln!(out, "{}", user.id)?;
        }
        UsersCommand::List => {
            for user in store.list_users().await? {
                let trial = user.trial_ends_at.map(|t| format!(" trial until {}", t.date_naive())).unwrap_or_default();
                writeln!(out, "{}  {}  {}  {}{}", user.id, user.email, user.role.as_str(), user.tier, trial)?;
            }
        }
    }
    Ok(())
}

async fn keys(cmd: KeysCommand, store: &dyn Store) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        KeysCommand::Create { email, label } => {
            let user = accounts::user_by_email(store, &email).await?;
            let (key, plaintext) = accounts::create_api_key(store, user.id, label, Utc::now()).await?;
            writeln!(out, "API key {} for {} (shown once; store it now):", key.id, user.email)?;
            writeln!(out, "{plaintext}")?;
        }
        KeysCommand::List { email } => {
            let user = accounts::user_by_email(store, &email).await?;
            for key in store.list_api_keys(user.id).await? {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_owned(),
                };
                let used = key.last_used_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never used".into());
                writeln!(
                    out,
                    "{}  {}  {}  created {}  {}",
                    key.id,
                    key.label.as_deref().unwrap_or("-"),
                    state,
                    key.created_at,
                    used
                )?;
            }
        }
        KeysCommand::Revoke { id } => match store.revoke_api_key(id, Utc::now()).await? {
            Some(key) => writeln!(out, "revoked {} (at {})", key.id, key.revoked_at.unwrap_or_else(Utc::now))?,
            None => bail!("no key with id {id}"),
        },
    }
    Ok(())
}
