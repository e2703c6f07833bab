//! Scale benchmark (not a test; it stops by itself): N idle puppeted mig33 sessions in
//! one bridge process (and ICQ sessions for `BENCH_SCALE_ICQ_SIZES`, default 1000; ICQ
//! runs over UDP, so its "connects" are the logins the simulator has online). For each N it reports the time from the bridge's start until the
//! simulator has every session logged in, the connects per second the simulator saw
//! (mean, and most in any one second), and, once idle, the bridge's RSS, RSS per
//! session, threads, and CPU over the idle period.
//!
//! Every session is a Matrix user with a management room and one mig33 login, stored in
//! the bridge's database before it starts, as after a restart. Each mig33 account has
//! `BENCH_SCALE_CONTACTS` contacts (default 5): the accounts after it, so each contact
//! is online and the bridge keeps their presence (ICQ sessions have none):
//!
//! * against a STAND-IN homeserver (`standin.rs`: a few endpoints answering at once,
//!   named as such in the output) for `BENCH_SCALE_SIZES` (default 0,100,1000,10000;
//!   0 is the base the per-session figures are taken over): Synapse on this machine
//!   cannot register 10,000 users in reasonable time. The logins are seeded with their
//!   management room and space;
//! * against a real Synapse for `BENCH_SCALE_SYNAPSE_SIZES` (default 1000; empty skips):
//!   the users are registered, the bot creates their management rooms, the logins are
//!   seeded; a first start (the bridge creates each login's space) is timed, then the
//!   bridge is restarted and measured.
//!
//! The simulator runs in this process, the bridge (release binary) in its own.
//!
//!     cargo build --release --bins
//!     cargo bench -p scale-bench --bench scale
//!
//! Also: `BENCH_SCALE_IDLE_SECS` (default 60: the idle CPU window),
//! `BENCH_SCALE_SETTLE_SECS` (default 35: from all connected to the idle measurement,
//! past the bridge's 30-s start-up catch-up window), `BENCH_SCALE_CONNECTS_PER_SECOND`
//! (the bridge's `connects_per_second` option; its default when unset),
//! `BENCH_SCALE_RESTART=0` (skips the restart after each stand-in mig33 run: stopped
//! and started again with the same database, the start-up timed as above),
//! `BENCH_SCALE_HEAPTRACK=<file>` (records the stand-in runs' bridge with heaptrack's
//! preload library, Debian's `heaptrack`, into that raw file; read it with
//! `/usr/lib/heaptrack/libexec/heaptrack_interpret < file | gzip > t.gz` and
//! `heaptrack_print t.gz`).
//!
//! Limits: each session is one socket in the bridge and one in this process (the
//! simulator), so the benchmark raises its open-files limit to the hard limit (the
//! bridge inherits it) and refuses an N that does not fit. An operator needs the same:
//! `LimitNOFILE=` (systemd) or `ulimit -n` above the number of sessions. Past about
//! 28,000 sessions to one legacy server address, the kernel's ephemeral ports
//! (`net.ipv4.ip_local_port_range`, 32768-60999 by default) run out as well.

mod standin;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use e2e_tests::bridge::{private_environment, BridgeProcess, SlotOptions};
use e2e_tests::process::{cpu_ms, rss_mb, threads};
use e2e_tests::TestUser;
use legacy_sim::mig33;
use retrobridge::core::NetworkId;
use retrobridge::store::{KeySource, LoginRecord, Store};
use serde_json::json;

use standin::StandIn;

const PASSWORD: &str = "pw";

struct Settings {
    /// Contacts per mig33 session: the next sessions' accounts, so each is also online.
    contacts: usize,
    /// Whether a stand-in mig33 run restarts the bridge and times that too.
    restart: bool,
    idle: Duration,
    settle: Duration,
    connects_per_second: Option<u64>,
}

fn env_sizes(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn localpart(i: usize) -> String {
    format!("scale{i:05}")
}

fn account(i: usize) -> String {
    format!("b{i:05}")
}

/// The network of a run's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    Mig33,
    Icq,
}

impl Net {
    fn name(self) -> &'static str {
        match self {
            Net::Mig33 => "mig33",
            Net::Icq => "icq",
        }
    }

    fn id(self) -> NetworkId {
        match self {
            Net::Mig33 => NetworkId::Mig33,
            Net::Icq => NetworkId::Icq,
        }
    }

    /// Session `i`'s account on this network.
    fn account(self, i: usize) -> String {
        match self {
            Net::Mig33 => account(i),
            Net::Icq => (100_000 + i).to_string(),
        }
    }

    /// What the bridge told the user when the login last connected.
    fn connected_notice(self, i: usize) -> String {
        match self {
            Net::Mig33 => format!("Connected to mig33 as {}.", account(i)),
            Net::Icq => format!("Connected to ICQ as {}.", self.account(i)),
        }
    }
}

/// The simulator of a run.
enum Sim {
    Mig33(mig33::Server),
    Icq(legacy_sim::icq::Server),
}

impl Sim {
    async fn start(net: Net, n: usize, contacts: usize) -> anyhow::Result<Sim> {
        Ok(match net {
            Net::Mig33 => Sim::Mig33(mig33::Server::start(sim_config(n, contacts)).await?),
            Net::Icq => {
                let config = legacy_sim::icq::Config {
                    listen: "127.0.0.1:0".into(),
                    users: (0..n)
                        .map(|i| {
                            serde_json::from_value(json!({
                                "uin": 100_000 + i,
                                "password": PASSWORD,
                            }))
                        })
                        .collect::<Result<_, _>>()?,
                    ..legacy_sim::icq::Config::default()
                };
                Sim::Icq(legacy_sim::icq::Server::start(config).await?)
            }
        })
    }

    fn addr(&self) -> String {
        match self {
            Sim::Mig33(s) => s.addr().to_string(),
            Sim::Icq(s) => s.addr().to_string(),
        }
    }

    async fn online(&self) -> usize {
        match self {
            Sim::Mig33(s) => s.online_count(),
            Sim::Icq(s) => s.online_users().await.len(),
        }
    }

    /// Connections (mig33: TCP connections accepted; ICQ runs over UDP: logins, as the
    /// sessions online).
    async fn connects(&self) -> u64 {
        match self {
            Sim::Mig33(s) => s.connections_accepted(),
            Sim::Icq(s) => s.online_users().await.len() as u64,
        }
    }
}

/// `n` accounts, each with `contacts` contacts: the accounts after it, in a ring.
fn sim_config(n: usize, contacts: usize) -> mig33::Config {
    mig33::Config {
        listen: "127.0.0.1:0".into(),
        users: (0..n)
            .map(|i| mig33::UserConfig {
                username: account(i),
                password: PASSWORD.into(),
                display_name: None,
                groups: Vec::new(),
                contacts: (1..=contacts.min(n.saturating_sub(1)))
                    .map(|d| mig33::ContactConfig {
                        username: account((i + d) % n),
                        group: None,
                        display_name: None,
                    })
                    .collect(),
            })
            .collect(),
        ..mig33::Config::default()
    }
}

/// The bridge's `networks.<net>.options` for this run.
fn mig33_options(settings: &Settings) -> Vec<(&'static str, serde_json::Value)> {
    settings
        .connects_per_second
        .map(|r| vec![("connects_per_second", json!(r))])
        .unwrap_or_default()
}

/// Writes a login per management room (and the room; spaces when `spaces`) into the
/// database of `dir`, as the bridge left them before a restart.
async fn seed(
    dir: &Path,
    net: Net,
    management_rooms: &[String],
    spaces: bool,
) -> anyhow::Result<()> {
    let store = Store::open(&dir.join("db"), &KeySource::file(&dir.join("db.key")))?;
    for (i, room) in management_rooms.iter().enumerate() {
        let mxid = format!("@{}:localhost", localpart(i));
        store.put_login(&LoginRecord {
            user: mxid.clone(),
            network: net.id(),
            legacy_id: net.account(i),
            password: PASSWORD.into(),
            space_room: spaces.then(|| format!("!space{i}:localhost")),
            stopped: None,
            proven: true,
            presence: None,
        })?;
        store.set_management_room(&mxid, room)?;
        // The user last heard that the login was connected (a restart is quiet).
        store.put_last_set(
            &mxid,
            &format!("connection notice {}", net.name()),
            &net.connected_notice(i),
        )?;
    }
    store.flush().await?;
    Ok(())
}

/// Start-up as the simulator saw it.
struct Startup {
    /// From the bridge's start to its `/_retrobridge/ready`.
    ready: Duration,
    /// From the bridge's start to every session logged in.
    all: Duration,
    /// From the bridge's start to the first connection.
    first: Duration,
    accepted: u64,
    mean_rate: f64,
    max_in_one_second: u64,
}

impl std::fmt::Display for Startup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ready after {:.1} s, all connected {:.1} s after the bridge started (first connect at {:.1} s); \
             the simulator saw {} connections, {:.0} connects/s on average, at most {} in one second",
            self.ready.as_secs_f64(),
            self.all.as_secs_f64(),
            self.first.as_secs_f64(),
            self.accepted,
            self.mean_rate,
            self.max_in_one_second
        )
    }
}

/// Samples the simulator from the bridge's start until `n` sessions are logged in and
/// the bridge is ready; `before` is the simulator's connection count before the start.
async fn watch_startup(
    sim: &Sim,
    n: usize,
    bridge: &mut BridgeProcess,
    started: Instant,
    before: u64,
    port: u16,
) -> anyhow::Result<Startup> {
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let deadline = started + Duration::from_secs(900);
    let mut ready = None;
    let mut all = None;
    let http = reqwest::Client::new();
    let ready_url = format!("http://127.0.0.1:{port}/_retrobridge/ready");
    loop {
        let now = Instant::now();
        samples.push((now, sim.connects().await - before));
        if all.is_none() && sim.online().await >= n {
            all = Some(now);
        }
        if ready.is_none() {
            let answer = http
                .get(&ready_url)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                ready = Some(Instant::now());
            }
        }
        if ready.is_some() && all.is_some() {
            break;
        }
        if bridge.wait_exit(Duration::ZERO).is_some() {
            bail!("the bridge exited during start-up");
        }
        if now > deadline {
            bail!("only {} of {n} sessions after 900 s", sim.online().await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let end = all.expect("all connected");
    let accepted = samples.last().expect("one sample").1;
    let first = samples
        .iter()
        .find(|(_, c)| *c > 0)
        .map_or(end, |(at, _)| *at);
    let mut max_in_one_second = 0;
    let mut j = 0;
    for &(at, count) in &samples {
        while samples[j].0 + Duration::from_secs(1) < at {
            j += 1;
        }
        max_in_one_second = max_in_one_second.max(count - samples[j].1);
    }
    let span = (end - first).as_secs_f64().max(0.05);
    Ok(Startup {
        ready: ready.expect("ready") - started,
        all: end - started,
        first: first - started,
        accepted,
        mean_rate: accepted as f64 / span,
        max_in_one_second,
    })
}

/// Idle figures of the bridge.
struct Idle {
    rss_mb: f64,
    rss_before_mb: f64,
    threads: usize,
    cpu_percent: f64,
}

async fn measure_idle(pid: u32, settings: &Settings) -> Idle {
    tokio::time::sleep(settings.settle).await;
    let rss_before_mb = rss_mb(pid);
    let cpu = cpu_ms(pid);
    tokio::time::sleep(settings.idle).await;
    let cpu = cpu_ms(pid) - cpu;
    Idle {
        rss_mb: rss_mb(pid),
        rss_before_mb,
        threads: threads(pid),
        cpu_percent: cpu / settings.idle.as_millis() as f64 * 100.0,
    }
}

fn report_idle(n: usize, idle: &Idle, base_mb: Option<f64>, settings: &Settings) -> String {
    let per_session = |mb: f64| mb * 1024.0 / n.max(1) as f64;
    let over_base = match base_mb {
        Some(base) if n > 0 => format!(
            " = {:.1} KiB per session over the {base:.1} MB base",
            per_session(idle.rss_mb - base)
        ),
        _ => String::new(),
    };
    format!(
        "RSS {:.1} MB{over_base} ({:.1} KiB per session in all; {:.1} MB at the start of the idle period), \
         {} threads; idle CPU {:.2} % of one core over {} s",
        idle.rss_mb,
        per_session(idle.rss_mb),
        idle.rss_before_mb,
        idle.threads,
        idle.cpu_percent,
        settings.idle.as_secs()
    )
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One run against the stand-in homeserver; returns the idle RSS (MB).
async fn run_standin(
    net: Net,
    n: usize,
    settings: &Settings,
    base_mb: Option<f64>,
) -> anyhow::Result<f64> {
    let label = format!(
        "[STAND-IN homeserver] {} N = {n}{}",
        net.name(),
        if net == Net::Mig33 {
            format!(", {} contacts each", settings.contacts)
        } else {
            String::new()
        }
    );
    let contacts = if net == Net::Mig33 {
        settings.contacts
    } else {
        0
    };
    let sim = Sim::start(net, n, contacts).await?;
    let standin = StandIn::start().await?;
    let dir = std::env::temp_dir().join(format!("retrobridge-scale-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let options: String = mig33_options(settings)
        .iter()
        .map(|(k, v)| format!("      {k}: {v}\n"))
        .collect();
    let options = if options.is_empty() {
        String::new()
    } else {
        format!("    options:\n{options}")
    };
    let networks = format!(
        "  {net}:\n    enabled: true\n    server: \"{sim}\"\n{options}",
        net = net.name(),
        sim = sim.addr(),
    );
    let config_path = standin.configure_bridge(&dir, "scale", port, &networks, "info")?;
    let rooms: Vec<String> = (0..n).map(|i| format!("!mgmt{i}:localhost")).collect();
    seed(&dir, net, &rooms, true).await?;
    let started = Instant::now();
    // Where the memory goes: heaptrack's recorder in the bridge, when asked.
    let heaptrack = std::env::var_os("BENCH_SCALE_HEAPTRACK").map(|raw| {
        [
            (
                "LD_PRELOAD",
                "/usr/lib/heaptrack/libheaptrack_preload.so".into(),
            ),
            ("DUMP_HEAPTRACK_OUTPUT", raw),
        ]
    });
    let env: Vec<(&str, &std::ffi::OsStr)> = heaptrack
        .iter()
        .flatten()
        .map(|(k, v)| (*k, v.as_os_str()))
        .collect();
    let mut bridge = BridgeProcess::run(&config_path, &dir.join("bridge.log"), None, &env)?;
    let pid = bridge.pid().context("bridge pid")?;
    let startup = watch_startup(&sim, n, &mut bridge, started, 0, port).await?;
    let idle = measure_idle(pid, settings).await;
    let requests = standin.take_requests();
    println!(
        "{label}: {startup}; {}",
        report_idle(n, &idle, base_mb, settings)
    );
    println!("{label}: requests to the stand-in homeserver from the start: {requests:?}");
    print_sends(&label, &standin);
    if !bridge.terminate() {
        println!(
            "{label}: the bridge did not stop cleanly:\n{}",
            tail(&bridge.log())
        );
    }
    if net == Net::Mig33 && n > 0 && settings.restart {
        // A restart: the logins, contacts, ghosts and rooms are all known now.
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim.online().await > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let before = sim.connects().await;
        let started = Instant::now();
        let mut bridge = BridgeProcess::run(&config_path, &dir.join("bridge.log"), None, &[])?;
        let pid = bridge.pid().context("bridge pid")?;
        let restart = watch_startup(&sim, n, &mut bridge, started, before, port).await?;
        let cpu = cpu_ms(pid);
        println!(
            "{label}: restart: {restart}; bridge CPU {:.1} s until all connected, RSS {:.1} MB; \
             requests to the stand-in homeserver: {:?}",
            cpu / 1000.0,
            rss_mb(pid),
            standin.take_requests()
        );
        print_sends(&format!("{label}: restart"), &standin);
        if !bridge.terminate() {
            println!("{label}: the bridge did not stop cleanly after the restart");
        }
    }
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(idle.rss_mb)
}

/// What the messages the stand-in received were, digits left out (notices, mostly).
fn print_sends(label: &str, standin: &StandIn) {
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, _, body) in standin.take_sends() {
        let shape: String = body
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(60)
            .collect();
        *kinds.entry(shape).or_default() += 1;
    }
    if !kinds.is_empty() {
        println!("{label}: messages sent, by text: {kinds:?}");
    }
}

/// Runs `f` for 0..n with at most `parallel` at a time.
async fn in_parallel<T, F, Fut>(n: usize, parallel: usize, f: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < n || !tasks.is_empty() {
        while next < n && tasks.len() < parallel {
            let fut = f(next);
            let i = next;
            tasks.spawn(async move { (i, fut.await) });
            next += 1;
        }
        if let Some(done) = tasks.join_next().await {
            let (i, result) = done?;
            out[i] = Some(result?);
        }
    }
    Ok(out
        .into_iter()
        .map(|t| t.expect("every task ran"))
        .collect())
}

/// One run against a real Synapse: a first start, then the measured restart.
async fn run_synapse(n: usize, settings: &Settings, base_mb: Option<f64>) -> anyhow::Result<()> {
    let label = format!("[real Synapse] mig33 N = {n}");
    let sim = Sim::start(Net::Mig33, n, settings.contacts).await?;
    let Sim::Mig33(mig) = &sim else {
        bail!("a mig33 simulator")
    };
    let options = SlotOptions {
        networks_yaml: "  mig33:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s0mig33_{id}\"\n".into(),
        everyone: true,
        rust_log: Some("info,sled=warn,hyper=warn,matrix_sdk=warn,reqwest=warn".into()),
        ..SlotOptions::default()
    };
    let (synapse, slot) =
        tokio::task::block_in_place(|| private_environment(&format!("scale-{n}"), options))?;
    let synapse = Arc::new(synapse);
    let prepared = Instant::now();
    in_parallel(n, 8, |i| {
        let synapse = synapse.clone();
        async move { synapse.register_user(&localpart(i), PASSWORD, false).await }
    })
    .await?;
    // The bot makes each user's management room, as after the user's first invite.
    let registration: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(slot.registration())?)?;
    let as_token = registration["as_token"]
        .as_str()
        .context("as_token")?
        .to_owned();
    let bot = TestUser::new(&synapse.base_url, &slot.bot, &as_token);
    let register = json!({ "type": "m.login.application_service", "username": "s0bot" });
    let _ = bot
        .request(reqwest::Method::POST, "/register", &[], Some(register))
        .await;
    let base_url = synapse.base_url.clone();
    let bot_id = slot.bot.clone();
    let rooms = in_parallel(n, 8, |i| {
        let bot = TestUser::new(&base_url, &bot_id, &as_token);
        async move {
            let body = json!({
                "invite": [format!("@{}:localhost", localpart(i))],
                "is_direct": true,
                "preset": "trusted_private_chat",
            });
            let room = bot
                .request(reqwest::Method::POST, "/createRoom", &[], Some(body))
                .await?;
            Ok(room["room_id"].as_str().context("room_id")?.to_owned())
        }
    })
    .await?;
    seed(&slot.dir, Net::Mig33, &rooms, false).await?;
    println!(
        "{label}: {n} users registered and their management rooms made in {:.1} s",
        prepared.elapsed().as_secs_f64()
    );
    let networks = slot.network_yaml("mig33", &sim.addr(), &mig33_options(settings));
    let start = |what: &str| -> anyhow::Result<(BridgeProcess, Instant, u64)> {
        let before = mig.connections_accepted();
        let started = Instant::now();
        let bridge =
            tokio::task::block_in_place(|| slot.start_with_networks(&synapse, Some(&networks)))
                .with_context(|| format!("{what} start"))?;
        Ok((bridge, started, before))
    };

    let (mut bridge, started, before) = start("first")?;
    let first = watch_startup(&sim, n, &mut bridge, started, before, slot.port).await?;
    // Done when the bot is in every space too (its CPU alone says little: it mostly
    // waits for Synapse), then quiet.
    let spaces = Instant::now() + Duration::from_secs(1200);
    loop {
        let joined = bot.joined_rooms().await.map_or(0, |rooms| rooms.len());
        if joined >= 2 * n {
            break;
        }
        if Instant::now() > spaces {
            bail!("the bot is in {joined} rooms, not the {} expected", 2 * n);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let all_spaces = started.elapsed();
    let quiet = wait_quiet(bridge.pid().context("pid")?).await;
    println!(
        "{label}: first start (the bridge creates every login's space): {first}; \
         the bot in every management room and space after {:.1} s, \
         quiet (CPU under 2 % for 5 s) after {:.1} s",
        all_spaces.as_secs_f64(),
        (quiet - started).as_secs_f64()
    );
    if !bridge.terminate() {
        println!("{label}: the bridge did not stop cleanly");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while mig.online_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut bridge, started, before) = start("second")?;
    let pid = bridge.pid().context("pid")?;
    let restart = watch_startup(&sim, n, &mut bridge, started, before, slot.port).await?;
    let idle = measure_idle(pid, settings).await;
    println!(
        "{label}: restart: {restart}; {}",
        report_idle(n, &idle, base_mb, settings)
    );
    if !bridge.terminate() {
        println!("{label}: the bridge did not stop cleanly");
    }
    Ok(())
}

/// When the process's CPU use first stays under 2 % of a core for 5 s (at most 15 min).
async fn wait_quiet(pid: u32) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let cpu = cpu_ms(pid);
        tokio::time::sleep(Duration::from_secs(5)).await;
        if cpu_ms(pid) - cpu < 100.0 || Instant::now() > deadline {
            return Instant::now() - Duration::from_secs(5);
        }
    }
}

/// Raises this process's open-files limit to its hard limit (the bridge, started from
/// here, inherits it) and returns it. Each session is one socket in the bridge and one
/// in the simulator, which runs in this process.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

/// Descriptors the bridge needs besides its sessions' sockets (database, listeners,
/// HTTP connections, threads' pipes), with a margin.
const OTHER_DESCRIPTORS: usize = 200;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let descriptors = raise_open_files_limit();
    let settings = Settings {
        contacts: std::env::var("BENCH_SCALE_CONTACTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        restart: std::env::var("BENCH_SCALE_RESTART").map_or(true, |v| v != "0"),
        idle: env_secs("BENCH_SCALE_IDLE_SECS", 60),
        settle: env_secs("BENCH_SCALE_SETTLE_SECS", 35),
        connects_per_second: std::env::var("BENCH_SCALE_CONNECTS_PER_SECOND")
            .ok()
            .and_then(|v| v.parse().ok()),
    };
    let sizes = env_sizes("BENCH_SCALE_SIZES", "0,100,1000,10000");
    let icq_sizes = env_sizes("BENCH_SCALE_ICQ_SIZES", "1000");
    let synapse_sizes = env_sizes("BENCH_SCALE_SYNAPSE_SIZES", "1000");
    println!(
        "scale benchmark: {} CPUs, load average {}, open files limit {}; sessions: idle logins (mig33; \
         ICQ for BENCH_SCALE_ICQ_SIZES), {} mig33 contacts each; connects_per_second {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
        descriptors,
        settings.contacts,
        settings
            .connects_per_second
            .map_or("the bridge's default".to_owned(), |r| r.to_string()),
    );
    let most = sizes
        .iter()
        .chain(&synapse_sizes)
        .copied()
        .max()
        .unwrap_or(0);
    if most + OTHER_DESCRIPTORS > descriptors as usize {
        bail!(
            "N = {most} needs about {} open files in the bridge and in this process, and this \
             machine allows {descriptors} (the hard limit; raising it takes CAP_SYS_RESOURCE or \
             `ulimit -Hn` as root before the run)",
            most + OTHER_DESCRIPTORS
        );
    }
    runtime.block_on(async {
        let mut base = None;
        for &n in &sizes {
            let rss = run_standin(Net::Mig33, n, &settings, base).await?;
            if n == 0 {
                base = Some(rss);
            }
        }
        for &n in &icq_sizes {
            run_standin(Net::Icq, n, &settings, base).await?;
        }
        for &n in &synapse_sizes {
            run_synapse(n, &settings, base).await?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(())
}
