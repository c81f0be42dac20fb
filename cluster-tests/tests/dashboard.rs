//! The dashboard in a real browser: Debian's headless Chromium, driven
//! through chromedriver (WebDriver), against three `jobd` processes each
//! serving HTTP (`JOBD_HTTP_ADDR`). The page is loaded from a follower.
//!
//! What it expects: the page lists every job; a job whose last run failed
//! has its row marked; a job's panel follows its log; a click on stop
//! (confirmed) stops the job, as read back through 9P; and after the
//! leader is killed, the leader the page shows becomes the new one and
//! the new leader's page shows the killed node unreachable.
//! A screenshot is saved under the target directory
//! (`CARGO_TARGET_TMPDIR/dashboard.png`).

use std::time::Duration;

use cluster_tests::browser::{browser, chromedriver};
use cluster_tests::cluster::Cluster;
use cluster_tests::poll::poll;
use fantoccini::{Client, Locator};

const DEADLINE: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(200);

/// The `class` of job `name`'s row, once the page shows it.
async fn row_class(b: &Client, name: &str) -> Option<String> {
    let row = b
        .find(Locator::Css(&format!("#rows .row[data-name=\"{name}\"]")))
        .await
        .ok()?;
    row.attr("class").await.ok().flatten()
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn text_of(b: &Client, css: &str) -> String {
    match b.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_lists_marks_stops_and_follows_a_leader_change() {
    let http: Vec<std::net::SocketAddr> = (0..3)
        .map(|_| cluster_tests::jobd::free_addr().unwrap())
        .collect();
    let env = |i: usize| vec![("JOBD_HTTP_ADDR".to_string(), http[i].to_string())];
    let mut c = Cluster::start_with_env(3, env).await.expect("cluster");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    for (clone, start) in [
        ("good:* * * * * *:echo all-is-well", true),
        ("bad:* * * * * *:echo broken; exit 3", true),
        ("idle:0 0 3 * * *:true", true),
        ("later:0 0 3 * * *:true", false),
    ] {
        fs.write("clone", clone.as_bytes()).await.unwrap();
        if start {
            let name = clone.split(':').next().unwrap();
            fs.write(&format!("jobs/{name}/ctl"), b"start")
                .await
                .unwrap();
        }
    }
    let page_node = (leader + 1) % 3;
    let (_driver, webdriver) = chromedriver().await;
    let b = browser(&webdriver).await;
    b.goto(&format!("http://{}/", http[page_node]))
        .await
        .unwrap();

    // Every job is listed; the failing one is marked once its run failed.
    for name in ["good", "bad", "idle", "later"] {
        poll(&format!("{name}'s row"), DEADLINE, EVERY, async || {
            row_class(&b, name).await
        })
        .await;
    }
    poll("bad's row marked failed", DEADLINE, EVERY, async || {
        row_class(&b, "bad").await.filter(|c| c.contains("failed"))
    })
    .await;
    let good = row_class(&b, "good").await.unwrap();
    assert!(
        !good.contains("failed"),
        "a job that succeeds is not marked: {good}"
    );

    // A job's panel shows its runs and follows its log.
    click(&b, "#rows .row[data-name=\"good\"]").await;
    poll("good's log in its panel", DEADLINE, EVERY, async || {
        let log = text_of(&b, "#job-log").await;
        let runs = text_of(&b, "#job-runs tbody").await;
        (log.contains("all-is-well") && runs.contains("exit 0")).then_some(())
    })
    .await;
    let shot = b.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, shot).unwrap();
    eprintln!("screenshot: {}", path.display());

    // Stop, confirmed, is done: read back through 9P on another node.
    click(&b, "#rows .row[data-name=\"idle\"]").await;
    poll("idle's panel", DEADLINE, EVERY, async || {
        (text_of(&b, "#job-name").await == "idle").then_some(())
    })
    .await;
    click(&b, "#job button[data-verb=\"stop\"]").await;
    let asked = b.get_alert_text().await.expect("a confirmation");
    assert!(asked.contains("stop job idle"), "{asked}");
    b.accept_alert().await.unwrap();
    poll("idle stopped, through 9P", DEADLINE, EVERY, async || {
        c.read(leader, "jobs/idle/ctl")
            .await
            .contains("state stopped\n")
            .then_some(())
    })
    .await;
    let good_state = c.read(leader, "jobs/good/ctl").await;
    assert!(
        good_state.contains("state started\n"),
        "only the job clicked: {good_state}"
    );

    // The leader shown, then a new one after the leader is killed.
    let shown_leader = async || -> Option<String> {
        b.find(Locator::Css("#cluster"))
            .await
            .ok()?
            .attr("data-leader")
            .await
            .ok()
            .flatten()
    };
    let old = c.nodes[leader].id.to_string();
    poll("the leader on the page", DEADLINE, EVERY, async || {
        shown_leader().await.filter(|l| *l == old)
    })
    .await;
    c.kill(leader).await.unwrap();
    let new = poll("a new leader on the page", DEADLINE, EVERY, async || {
        shown_leader().await.filter(|l| *l != old && l != "none")
    })
    .await;
    let survivors: Vec<String> = (0..3)
        .filter(|i| *i != leader)
        .map(|i| c.nodes[i].id.to_string())
        .collect();
    assert!(survivors.contains(&new), "{new} is one of {survivors:?}");
    // The new leader's dashboard shows the killed node unreachable (a
    // follower hears only from the leader, so only the leader can tell).
    let new_leader = c.index_of(new.parse().unwrap()).unwrap();
    if new_leader != page_node {
        b.goto(&format!("http://{}/", http[new_leader]))
            .await
            .unwrap();
    }
    let chip = format!("#cluster .member[data-id=\"{old}\"]");
    poll(
        "the killed node shown unreachable",
        DEADLINE,
        EVERY,
        async || {
            let class = b
                .find(Locator::Css(&chip))
                .await
                .ok()?
                .attr("class")
                .await
                .ok()??;
            class.contains("quiet").then_some(())
        },
    )
    .await;
    b.close().await.unwrap();
}
