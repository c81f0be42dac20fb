//! A headless Chromium for the dashboard's test and benchmark: Debian's
//! `chromium`, driven through `chromedriver` (WebDriver) on a port it
//! picks, killed with its handle.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const STARTUP: Duration = Duration::from_secs(30);

/// chromedriver on a port it picks, and the URL it answers on.
pub async fn chromedriver() -> (Child, String) {
    let path = crate::tools::require_tool("chromedriver");
    let mut child = tokio::process::Command::new(path)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(STARTUP, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // "ChromeDriver was started successfully on port 36665."
            if let Some(p) = line.strip_prefix("ChromeDriver was started successfully on port ") {
                return p.trim_end_matches('.').parse::<u16>().expect("a port");
            }
        }
        panic!("chromedriver ended before saying its port");
    })
    .await
    .expect("chromedriver says its port in time");
    // Keep reading its output, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://127.0.0.1:{port}"))
}

/// A new headless browser session (its own profile) through `webdriver`.
pub async fn browser(webdriver: &str) -> Client {
    let chromium = crate::tools::require_tool("chromium");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"],
        }),
    );
    // WebDriver over plain HTTP on loopback: no TLS backend.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("a browser session")
}
