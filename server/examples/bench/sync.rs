//! Transcript import: `agentdeck sync` over Claude Code transcripts (about
//! 30 kB each, as a real conversation's), then again with nothing changed.

use crate::{
    http::Http,
    servers::{Agentdeck, Binaries},
    Goal, Report,
};
use serde_json::json;
use std::{path::Path, process::Command, time::Instant};

/// Writes `files` transcripts for a project; returns their bytes.
fn write_transcripts(folder: &Path, project: &Path, files: usize) -> Result<usize, String> {
    std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
    let mut total = 0;
    for i in 0..files {
        let id = format!("{i:08}-0000-4000-8000-000000000000");
        let mut text = String::new();
        for j in 0..60 {
            let (role, content) = if j % 2 == 0 {
                ("user", json!(format!("message {j} {}", "x".repeat(150))))
            } else {
                (
                    "assistant",
                    json!([{"type": "text", "text": "lorem ipsum dolor sit amet ".repeat(12)}]),
                )
            };
            let line = json!({
                "type": role, "sessionId": id, "cwd": project,
                "timestamp": "2025-05-01T10:00:00.000Z", "uuid": format!("{i}-{j}"),
                "isSidechain": false, "message": {"role": role, "content": content},
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        total += text.len();
        std::fs::write(folder.join(format!("{id}.jsonl")), text).map_err(|e| e.to_string())?;
    }
    Ok(total)
}

pub async fn sync(
    bins: &Binaries,
    dir: &Path,
    files: usize,
    report: &mut Report,
) -> Result<(), String> {
    eprintln!("sync: {files} transcripts");
    let project = dir.join("project");
    std::fs::create_dir_all(&project).map_err(|e| e.to_string())?;
    let project = project.canonicalize().map_err(|e| e.to_string())?;
    {
        // The project is registered through the server's own code path,
        // before there is anything to import.
        let mut server = Agentdeck::start(bins, dir, 0)?;
        let mut http = Http::connect(&server.addr).await?;
        http.json("POST", "/api/projects", &json!({ "path": project }), 201)
            .await?;
        server.stop();
    }
    let folder_name: String = project
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let bytes = write_transcripts(&dir.join("claude").join(folder_name), &project, files)?;
    let timed = || {
        let started = Instant::now();
        let out = Command::new(&bins.agentdeck)
            .arg("sync")
            .args(crate::servers::data_args(dir))
            .arg("--project")
            .arg(&project)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "agentdeck sync failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok::<_, String>((
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        ))
    };
    let (full, said) = timed()?;
    let (again, said_again) = timed()?;
    report.note(format!(
        "sync of {files} transcripts ({:.1} MB): {full:.3} s, \"{said}\"; again: {:.1} ms, \"{said_again}\"",
        bytes as f64 / 1e6,
        again * 1000.0
    ));
    report.value(
        &format!("sync_mb_s ({files} files)"),
        "sync_mb_s",
        bytes as f64 / 1e6 / full,
        None,
        Goal::AtLeast(200.0),
    );
    report.value(
        &format!("resync_{files}_ms (nothing changed)"),
        &format!("resync_{files}_ms"),
        again * 1000.0,
        None,
        Goal::AtMost(50.0),
    );
    Ok(())
}
