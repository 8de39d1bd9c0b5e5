//! Pages: a project's sessions page rendered for 1,000 sessions against the
//! same bytes served as a static file, and the hydrate bundle's size.

use crate::{
    http::Http,
    servers::{Agentdeck, Bare, Binaries},
    Goal, Report,
};
use serde_json::json;
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// Requests per second for `path` over four kept-alive connections.
async fn requests_per_s(addr: &str, path: &str, time: Duration) -> Result<f64, String> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut http = Http::connect(addr).await?;
        let path = path.to_owned();
        tasks.spawn(async move {
            let started = Instant::now();
            let mut done = 0u64;
            while started.elapsed() < time {
                let (status, _) = http.send("GET", &path, &[], Vec::new()).await?;
                if status != 200 {
                    return Err(format!("GET {path}: {status}"));
                }
                done += 1;
            }
            Ok::<_, String>(done as f64 / started.elapsed().as_secs_f64())
        });
    }
    let mut rate = 0.0;
    while let Some(done) = tasks.join_next().await {
        rate += done.map_err(|e| e.to_string())??;
    }
    Ok(rate)
}

pub async fn ssr(
    bins: &Binaries,
    dir: &Path,
    sessions: usize,
    time: Duration,
    report: &mut Report,
) -> Result<(), String> {
    eprintln!("pages: the sessions page of a project with {sessions} sessions");
    let server = Agentdeck::start(bins, dir, 0)?;
    let mut http = Http::connect(&server.addr).await?;
    let project_dir = dir.join("project");
    std::fs::create_dir_all(&project_dir).map_err(|e| e.to_string())?;
    let project = http
        .json(
            "POST",
            "/api/projects",
            &json!({ "path": project_dir.canonicalize().map_err(|e| e.to_string())? }),
            201,
        )
        .await?;
    let id = project["id"].as_i64().ok_or("a project id")?;
    for n in 0..sessions {
        http.json(
            "POST",
            &format!("/api/projects/{id}/sessions"),
            &json!({ "name": format!("session {n}"), "agent": "shell" }),
            201,
        )
        .await?;
    }
    let path = format!("/projects/{id}/sessions");
    let (status, page) = http.send("GET", &path, &[], Vec::new()).await?;
    if status != 200 {
        return Err(format!("GET {path}: {status}"));
    }
    let file = dir.join("page.html");
    std::fs::write(&file, &page).map_err(|e| e.to_string())?;
    let bare = Bare::start(bins, Some(&file))?;
    let ours = requests_per_s(&server.addr, &path, time).await?;
    let floor = requests_per_s(&bare.addr, "/page", time).await?;
    report.note(format!(
        "sessions page of {sessions} sessions: {} KiB of HTML",
        page.len() / 1024
    ));
    report.ratio("ssr_ratio", ours, floor, Goal::AtLeast(0.25));
    Ok(())
}

/// The hydrate WASM and its JS glue as a browser downloads them (brotli).
pub fn bundle(report: &mut Report) {
    let pkg = Path::new("target/site/pkg");
    let size = |name: &str| std::fs::metadata(pkg.join(name)).map(|m| m.len());
    match (size("agentdeck.wasm.br"), size("agentdeck.js.br")) {
        (Ok(wasm), Ok(js)) => report.value(
            "bundle_br_kib (WASM + JS, brotli)",
            "bundle_br_kib",
            (wasm + js) as f64 / 1024.0,
            None,
            Goal::AtMost(120.0),
        ),
        _ => report.problems.push(
            "no precompressed bundle in target/site/pkg: run `cargo leptos build --release --precompress`"
                .into(),
        ),
    }
}
