//! Start-up and serving: loads TLS material and the scenario, binds the main listener and one
//! listener per vault, serves them over TLS (HTTP/1.1), writes `cloud.env` atomically, prints
//! the ready line and runs until SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::http::Resp;
use crate::state::Sim;

/// Options of `cloudsim serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address of the main listener (port 0 = OS-assigned).
    pub listen: SocketAddr,
    /// State directory (CA, keys, cloud.env).
    pub state_dir: PathBuf,
    /// Scenario file; the embedded default when absent.
    pub scenario: Option<PathBuf>,
    /// First vault port (N, N+1, ...); OS-assigned when absent.
    pub vault_port_base: Option<u16>,
}

#[derive(Clone)]
struct VaultState {
    sim: Arc<Sim>,
    index: usize,
}

/// Marks a response whose connection must be closed without sending it (a dropped-connection
/// fault).
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

fn dropped() -> Resp {
    let mut r = Resp::new(axum::body::Body::empty());
    r.extensions_mut().insert(DropConnection);
    r
}

/// Applies a fault's latency, then returns its answer or a drop marker (`None`: no answer).
async fn apply_hit(hit: Option<crate::faults::Hit>) -> Option<HitOutcome> {
    let hit = hit?;
    if hit.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(hit.latency_ms)).await;
    }
    if hit.drop {
        return Some(HitOutcome::Drop);
    }
    hit.answer.map(HitOutcome::Answer)
}

enum HitOutcome {
    Drop,
    Answer(crate::faults::Fault),
}

async fn main_handler(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let segs = crate::http::segments(&path);
    if segs.first().is_some_and(|s| s == "_sim") {
        return crate::admin::handle(&sim, &method, &segs[1..], &query, &body).await;
    }
    let (target, resp) = if crate::identity::is_identity_path(&segs) {
        let resp = match apply_hit(sim.faults.take("identity")).await {
            Some(HitOutcome::Drop) => dropped(),
            Some(HitOutcome::Answer(f)) => crate::graph::fault_response(&f),
            None => crate::identity::handle(&sim, &method, &segs, &query, &headers),
        };
        ("identity", resp)
    } else if crate::graph::is_graph_path(&segs) {
        let resp = match apply_hit(sim.faults.take("graph")).await {
            Some(HitOutcome::Drop) => dropped(),
            Some(HitOutcome::Answer(f)) => crate::graph::fault_response(&f),
            None => crate::graph::handle(&sim, &method, &segs, &query, &headers, &body),
        };
        ("graph", resp)
    } else if crate::devops::is_devops_path(&segs) {
        let resp = match apply_hit(sim.faults.take("devops")).await {
            Some(HitOutcome::Drop) => dropped(),
            Some(HitOutcome::Answer(f)) => crate::graph::fault_response(&f),
            None => crate::devops::handle(&sim, &method, &segs, &query, &headers),
        };
        ("devops", resp)
    } else if crate::entra::is_entra_path(&segs) {
        if crate::entra::is_token_path(&segs) {
            let resp = match apply_hit(sim.faults.take("token")).await {
                Some(HitOutcome::Drop) => dropped(),
                Some(HitOutcome::Answer(f)) => crate::entra::fault_response(&sim, &headers, &f),
                None => crate::entra::handle(&sim, &method, &segs, &query, &headers, &body),
            };
            ("token", resp)
        } else {
            let resp = crate::entra::handle(&sim, &method, &segs, &query, &headers, &body);
            ("entra", resp)
        }
    } else {
        let resp = match apply_hit(sim.faults.take("arm")).await {
            Some(HitOutcome::Drop) => dropped(),
            Some(HitOutcome::Answer(f)) => {
                let mut r = crate::arm::fault_response(&sim, &f);
                crate::arm::arm_headers(&mut r, &headers);
                r
            }
            None => crate::arm::handle(&sim, &method, &path, &segs, &query, &headers, &body),
        };
        ("arm", resp)
    };
    record(&sim, target, &method, &path, &query, &resp);
    resp
}

fn record(sim: &Sim, target: &str, method: &Method, path: &str, query: &str, resp: &Resp) {
    let status = if resp.extensions().get::<DropConnection>().is_some() {
        0
    } else {
        resp.status().as_u16()
    };
    sim.faults.record(target, method.as_str(), path, query, status);
    tracing::debug!(%method, %path, status, target, "request");
}

async fn vault_handler(
    State(st): State<VaultState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    let sim = &st.sim;
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let Some(info) = sim.read().vaults.get(st.index).map(crate::keyvault::VaultInfo::of) else {
        return crate::keyvault::kv_error(
            axum::http::StatusCode::NOT_FOUND,
            "NotFound",
            "No such vault.",
        );
    };
    let target = format!("vault:{}", info.name);
    let mut resp = match apply_hit(sim.faults.take(&target)).await {
        Some(HitOutcome::Drop) => dropped(),
        Some(HitOutcome::Answer(f)) => crate::keyvault::fault_response(&f),
        None => match sim.throttle.check(&info.name, chrono::Utc::now().timestamp_millis()) {
            Some(retry_after) => crate::keyvault::throttled(retry_after),
            None => crate::keyvault::handle(sim, st.index, &method, &path, &query, &headers, &body),
        },
    };
    crate::keyvault::kv_headers(&mut resp, &info, &headers);
    record(sim, &target, &method, &path, &query, &resp);
    resp
}

/// An error that makes hyper close the connection without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// Accepts TLS connections on `listener` and serves `app` on each (HTTP/1.1).
pub async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        let resp = tower::ServiceExt::oneshot(app, req)
                            .await
                            .unwrap_or_else(|e| match e {});
                        if resp.extensions().get::<DropConnection>().is_some() {
                            Err(Dropped)
                        } else {
                            Ok(resp)
                        }
                    }
                });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, "connection error: {e}");
            }
        });
    }
}

/// Binds a listener for the vault at `index` on `ip` (port 0: OS-assigned) and serves it;
/// returns its address and the serving task.
pub async fn spawn_vault(
    sim: &Arc<Sim>,
    index: usize,
    ip: std::net::IpAddr,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let acceptor = sim
        .runtime
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .acceptor
        .clone()
        .context("TLS acceptor not ready")?;
    let listener = bind(SocketAddr::new(ip, 0)).await?;
    let addr = listener.local_addr()?;
    let app =
        Router::new().fallback(vault_handler).with_state(VaultState { sim: sim.clone(), index });
    Ok((addr, tokio::spawn(serve_tls(listener, acceptor, app))))
}

/// Writes `contents` to `path` via a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// The `cloud.env` text for a running simulator.
pub fn cloud_env(sim: &Sim, ca_path: &Path) -> String {
    let url = sim.main_url();
    let mut lines = vec![
        "AZURE_CLOUD=custom".to_string(),
        format!("AZURE_TENANT_ID={}", sim.tenant_id),
        format!("AZURE_CLIENT_ID={}", sim.client_id),
        format!("AZURE_CLIENT_SECRET={}", sim.initial.primary_app().passwords[0].secret),
        format!("AZURE_AUTHORITY_HOST={url}/"),
        format!("AZURE_RESOURCE_MANAGER_ENDPOINT={url}/"),
        "AZURE_RESOURCE_MANAGER_AUDIENCE=https://management.azure.com/".to_string(),
        "AZURE_KEYVAULT_AUDIENCE=https://vault.azure.net".to_string(),
        format!("AZURE_GRAPH_ENDPOINT={url}/"),
        format!("AZURE_CA_BUNDLE={}", ca_path.display()),
        format!("CLOUDSIM_URL={url}"),
        format!("CLOUDSIM_IDENTITY_ENDPOINT={url}/msi/token"),
        format!("CLOUDSIM_IDENTITY_HEADER={}", sim.identity_header),
        format!("CLOUDSIM_IMDS_ENDPOINT={url}"),
    ];
    if let Some(org) = sim.devops.first() {
        lines.push(format!("CLOUDSIM_DEVOPS_URL={url}/{}", org.name));
        if let Some(pat) = org.pats.first() {
            lines.push(format!("CLOUDSIM_DEVOPS_PAT={pat}"));
        }
    }
    lines.push(String::new());
    lines.join("\n")
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `cloudsim serve` until a termination signal.
pub async fn serve(opts: ServeOptions) -> Result<()> {
    std::fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("creating {}", opts.state_dir.display()))?;
    let state_dir = std::fs::canonicalize(&opts.state_dir)?;
    let ca = crate::tls::Ca::load_or_create(&state_dir)?;
    let signer = crate::token::Signer::load_or_create(&state_dir)?;
    let leaf_key = crate::certs::leaf_key(&state_dir)?;
    let text = match &opts.scenario {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => crate::scenario::DEFAULT_SCENARIO.to_string(),
    };
    let started = std::time::Instant::now();
    let scenario = crate::scenario::parse(&text)?;
    let system = crate::certs::load_system_cas();
    tracing::info!(count = system.len(), "system CA certificates available");
    let built = crate::scenario::build(
        &scenario,
        &crate::scenario::BuildCtx {
            now: crate::http::now(),
            ca: &ca.issuer,
            leaf_key: &leaf_key,
            system: &system,
        },
    )?;
    let build_ms = started.elapsed().as_millis();

    let main_listener = bind(opts.listen).await?;
    let main_addr = main_listener.local_addr()?;
    let mut vaults = built.vaults;
    let mut vault_listeners = Vec::new();
    for (i, v) in vaults.iter_mut().enumerate() {
        let port = match opts.vault_port_base {
            Some(base) => base
                .checked_add(u16::try_from(i).context("too many vaults")?)
                .context("vault port overflow")?,
            None => 0,
        };
        let l = bind(SocketAddr::new(main_addr.ip(), port)).await?;
        v.addr = l.local_addr()?;
        vault_listeners.push(l);
    }
    let world = crate::state::World {
        tenants: built.tenants,
        subscriptions: built.subscriptions,
        vaults,
        deps: built.deps,
    };
    let acceptor = TlsAcceptor::from(ca.server_config()?);
    let sim = Arc::new(Sim {
        tenant_id: built.tenant_id,
        client_id: built.client_id,
        sp_object_id: built.sp_object_id,
        roles: built.roles,
        arm_page_size: built.arm_page_size,
        main_addr,
        signer,
        faults: crate::faults::Faults::default(),
        throttle: crate::faults::Throttle::default(),
        initial: world.clone(),
        world: std::sync::RwLock::new(world),
        material: crate::state::Material { seed: built.seed, ca: ca.issuer, leaf_key, system },
        runtime: std::sync::Mutex::new(crate::state::Runtime {
            acceptor: Some(acceptor.clone()),
            added: Vec::new(),
        }),
        identities: built.identities,
        identity_header: built.identity_header,
        devops: built.devops,
    });

    let main_app = Router::new().fallback(main_handler).with_state(sim.clone());
    tokio::spawn(serve_tls(main_listener, acceptor.clone(), main_app));
    for (index, l) in vault_listeners.into_iter().enumerate() {
        let app = Router::new()
            .fallback(vault_handler)
            .with_state(VaultState { sim: sim.clone(), index });
        tokio::spawn(serve_tls(l, acceptor.clone(), app));
    }
    for v in &sim.read().vaults {
        let uri = format!("{}/", v.base_url());
        tracing::info!(vault = %v.name, %uri, reachable = v.reachable(), "vault listening");
    }
    let stats = sim.stats(crate::http::now());
    let total_ms = started.elapsed().as_millis();
    tracing::info!(?stats, build_ms, total_ms, "scenario loaded");

    let ca_path = state_dir.join("ca.pem");
    write_atomic(&state_dir.join("cloud.env"), &cloud_env(&sim, &ca_path))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "cloudsim ready {}", sim.main_url())?;
        out.flush()?;
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
}
