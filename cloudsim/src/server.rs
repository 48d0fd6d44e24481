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
        return crate::admin::handle(&sim, &method, &segs[1..], &body);
    }
    let (target, resp) = if crate::entra::is_entra_path(&segs) {
        if crate::entra::is_token_path(&segs) {
            let resp = match sim.faults.take("token") {
                Some(f) => crate::entra::fault_response(&sim, &headers, &f),
                None => crate::entra::handle(&sim, &method, &segs, &query, &headers, &body),
            };
            ("token", resp)
        } else {
            let resp = crate::entra::handle(&sim, &method, &segs, &query, &headers, &body);
            ("entra", resp)
        }
    } else {
        let resp = match sim.faults.take("arm") {
            Some(f) => {
                let mut r = crate::arm::fault_response(&sim, &f);
                crate::arm::arm_headers(&mut r, &headers);
                r
            }
            None => crate::arm::handle(&sim, &method, &path, &segs, &query, &headers),
        };
        ("arm", resp)
    };
    sim.faults.record(target, resp.status().as_u16());
    tracing::debug!(%method, %path, status = resp.status().as_u16(), target, "main");
    resp
}

async fn vault_handler(
    State(st): State<VaultState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Resp {
    let sim = &st.sim;
    let Some(vault) = sim.vaults.get(st.index) else {
        return crate::keyvault::kv_error(
            axum::http::StatusCode::NOT_FOUND,
            "NotFound",
            "No such vault.",
        );
    };
    let target = format!("vault:{}", vault.name);
    let mut resp = match sim.faults.take(&target) {
        Some(f) => crate::keyvault::fault_response(&f),
        None => crate::keyvault::handle(
            sim,
            st.index,
            &method,
            uri.path(),
            uri.query().unwrap_or(""),
            &headers,
        ),
    };
    crate::keyvault::kv_headers(&mut resp, vault, &headers);
    sim.faults.record(&target, resp.status().as_u16());
    let status = resp.status().as_u16();
    tracing::debug!(%method, path = uri.path(), status, vault = %vault.name, "vault");
    resp
}

/// Accepts TLS connections on `listener` and serves `app` on each (HTTP/1.1).
async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
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
            let svc = hyper_util::service::TowerToHyperService::new(app);
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
    [
        "AZURE_CLOUD=custom".to_string(),
        format!("AZURE_TENANT_ID={}", sim.tenant_id),
        format!("AZURE_CLIENT_ID={}", sim.client_id),
        format!("AZURE_CLIENT_SECRET={}", sim.client_secret),
        format!("AZURE_AUTHORITY_HOST={url}/"),
        format!("AZURE_RESOURCE_MANAGER_ENDPOINT={url}/"),
        "AZURE_RESOURCE_MANAGER_AUDIENCE=https://management.azure.com/".to_string(),
        "AZURE_KEYVAULT_AUDIENCE=https://vault.azure.net".to_string(),
        format!("AZURE_GRAPH_ENDPOINT={url}/"),
        format!("AZURE_CA_BUNDLE={}", ca_path.display()),
        format!("CLOUDSIM_URL={url}"),
        String::new(),
    ]
    .join("\n")
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
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
    let sim = Arc::new(Sim {
        tenant_id: built.tenant_id,
        client_id: built.client_id,
        client_secret: built.client_secret,
        sp_object_id: built.sp_object_id,
        roles: built.roles,
        arm_page_size: built.arm_page_size,
        main_addr,
        subscriptions: built.subscriptions,
        vaults,
        signer,
        faults: crate::faults::Faults::default(),
    });
    let acceptor = TlsAcceptor::from(ca.server_config()?);

    let main_app = Router::new().fallback(main_handler).with_state(sim.clone());
    tokio::spawn(serve_tls(main_listener, acceptor.clone(), main_app));
    for (index, l) in vault_listeners.into_iter().enumerate() {
        let app = Router::new()
            .fallback(vault_handler)
            .with_state(VaultState {
                sim: sim.clone(),
                index,
            });
        tokio::spawn(serve_tls(l, acceptor.clone(), app));
    }
    for v in &sim.vaults {
        let uri = format!("{}/", v.base_url());
        tracing::info!(vault = %v.name, %uri, reachable = v.reachable(), "vault listening");
    }
    let stats = sim.stats(crate::http::now());
    tracing::info!(?stats, "scenario loaded");

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
