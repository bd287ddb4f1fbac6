//! `bench_scrape`: what rendering pages costs on this machine, with the `Browser` behind the
//! egress proxy as the scraper runs it: distinct local pages loaded by concurrent loaders on
//! pooled sessions (cleared between pages) and on a new session per page (pages/s, p50/p95 per
//! page), and the memory of this process with its chromedriver and Chromium while the pool is
//! warm. Prints a Markdown table. Run it through `bench/scrape.sh` (release build); `--quick`
//! smoke-tests it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use clap::Parser;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Html, Path};
use poem::{Route, get, handler};
use workhorse::egress::EgressPolicy;
use workhorse::egress::proxy::EgressProxy;
use workhorse::scrape::browser::{Browser, BrowserConfig, PageRequest};

/// Filler for the pages' paragraphs (~290 bytes each with its label).
const PARAGRAPH: &str = "Workhorse renders pages in headless Chromium through chromedriver, \
    waits for what the page adds with JavaScript, and keeps its text, HTML and Markdown. Every \
    request of the browser goes through the egress proxy, which refuses private addresses \
    unless an operator allows them.";
/// Paragraphs per page: ~3.8 KB of HTML.
const PARAGRAPHS: usize = 12;

/// Sizes; each has a full and a `--quick` default.
#[derive(Parser)]
#[command(about = "Benchmark page rendering (see bench/scrape.sh)")]
struct Args {
    /// Few pages for a smoke run; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Distinct pages loaded in each phase [default: 50, quick 6].
    #[arg(long)]
    pages: Option<usize>,
    /// Browser sessions in the pool.
    #[arg(long, default_value_t = 2)]
    pool_size: usize,
    /// Pages loaded at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Two worker threads: the machine's cores, shared with chromedriver and Chromium.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let pages = args.pages.unwrap_or(if args.quick { 6 } else { 50 });
    ensure!(pages > 0, "--pages must be at least 1");
    ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let site = serve_pages().await?;
    // As the scraper runs it: the browser behind the egress proxy, which allows the site.
    let policy = EgressPolicy::new(&["127.0.0.1".to_string()]).map_err(anyhow::Error::msg)?;
    let proxy = EgressProxy::start(Arc::new(policy))
        .await
        .context("starting the egress proxy")?;
    let browser = Browser::start(BrowserConfig {
        pool_size: args.pool_size,
        proxy: Some(proxy.addr()),
        ..BrowserConfig::default()
    })
    .await?;
    let measured = measure(&args, &browser, &site, pages).await;
    browser.shutdown().await;
    proxy.shutdown().await;
    let rows = measured?;
    if cfg!(debug_assertions) {
        println!("(debug build: these figures are not representative)\n");
    }
    println!("| measure | value |\n|---|---|");
    for (what, value) in rows {
        println!("| {what} | {value} |");
    }
    Ok(())
}

/// The phases in turn: pooled, memory with the pool warm, a new session per page.
async fn measure(
    args: &Args,
    browser: &Browser,
    site: &str,
    pages: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let (conc, pool) = (args.concurrency, args.pool_size);
    let mut rows = Vec::new();

    eprintln!("warm-up: {conc} pages, opening the pool's sessions");
    let warm: Vec<String> = (0..conc)
        .map(|i| format!("{site}/pages/{}", 1000 + i))
        .collect();
    load_all(browser, &warm, conc, false).await?;
    let before = browser.stats().sessions_created;

    let urls: Vec<String> = (0..pages).map(|n| format!("{site}/pages/{n}")).collect();
    eprintln!("pooled: {pages} pages, {conc} loaders, pool of {pool}");
    let pooled = load_all(browser, &urls, conc, false).await?;
    let opened = browser.stats().sessions_created - before;
    rows.push(timing_row(
        &format!(
            "{pages} pages, {conc} loaders, pool of {pool} warm sessions \
             (cleared after each page; {opened} sessions opened)"
        ),
        &pooled,
    ));

    eprintln!("memory with the pool warm");
    let (rss, pss, processes) = tree_memory(std::process::id())?;
    let own = own_rss()?;
    rows.push((
        format!("memory with the pool warm: this process, chromedriver and Chromium ({processes} processes)"),
        format!("RSS {} (PSS {})", mib(rss), mib(pss)),
    ));
    rows.push(("RSS of this process alone".into(), mib(own)));

    eprintln!("new session per page: {pages} pages, {conc} loaders");
    let before = browser.stats().sessions_created;
    let fresh = load_all(browser, &urls, conc, true).await?;
    let opened = browser.stats().sessions_created - before;
    rows.push(timing_row(
        &format!("{pages} pages, {conc} loaders, a new session per page ({opened} opened)"),
        &fresh,
    ));
    Ok(rows)
}

/// Throughput and per-page latency of one phase.
struct Timings {
    pages_per_sec: f64,
    /// Milliseconds per page (call to return), sorted.
    latencies: Vec<f64>,
    /// Mean milliseconds of the page itself: navigation and extraction.
    page: f64,
}

fn timing_row(what: &str, t: &Timings) -> (String, String) {
    let mean = t.latencies.iter().sum::<f64>() / t.latencies.len() as f64;
    let value = format!(
        "{:.2} pages/s; per page p50 {}, p95 {}, mean {} = page {} + session {}",
        t.pages_per_sec,
        ms(pct(&t.latencies, 50.0)),
        ms(pct(&t.latencies, 95.0)),
        ms(mean),
        ms(t.page),
        ms(mean - t.page)
    );
    (what.to_string(), value)
}

/// Load every URL once, `concurrency` at a time, checking each page's title.
async fn load_all(
    browser: &Browser,
    urls: &[String],
    concurrency: usize,
    new_session: bool,
) -> anyhow::Result<Timings> {
    let urls = Arc::new(urls.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let loaders: Vec<_> = (0..concurrency)
        .map(|_| {
            let (browser, urls, next) = (browser.clone(), urls.clone(), next.clone());
            tokio::spawn(async move {
                let mut measured = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(url) = urls.get(i) else { break };
                    let request = PageRequest {
                        new_session,
                        ..PageRequest::new(url.parse().context("a page URL")?)
                    };
                    let sent = Instant::now();
                    let page = browser
                        .load(&request)
                        .await
                        .with_context(|| format!("loading {url}"))?;
                    let took = sent.elapsed().as_secs_f64() * 1000.0;
                    let n = url.rsplit('/').next().unwrap_or_default();
                    if page.title != format!("Page {n}") {
                        bail!("{url} showed the title {:?}", page.title);
                    }
                    let work = page.navigate_ms + page.wait_ms + page.extract_ms;
                    measured.push((took, work as f64));
                }
                anyhow::Ok(measured)
            })
        })
        .collect();
    let mut measured = Vec::with_capacity(urls.len());
    for loader in loaders {
        measured.extend(loader.await.context("a loader task")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let page = measured.iter().map(|(_, work)| work).sum::<f64>() / measured.len() as f64;
    let mut latencies: Vec<f64> = measured.into_iter().map(|(took, _)| took).collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Timings {
        pages_per_sec: urls.len() as f64 / elapsed,
        latencies,
        page,
    })
}

/// Serve the pages on 127.0.0.1:0; returns the site's base URL.
async fn serve_pages() -> anyhow::Result<String> {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .context("binding the page server")?;
    let addr = *acceptor.local_addr()[0]
        .as_socket_addr()
        .context("the page server's address")?;
    let app = Route::new().at("/pages/:n", get(numbered_page));
    // Runs until the process ends.
    tokio::spawn(async move {
        if let Err(e) = poem::Server::new_with_acceptor(acceptor).run(app).await {
            eprintln!("the page server stopped: {e}");
        }
    });
    Ok(format!("http://{addr}"))
}

/// A distinct page of ~3.8 KB: a title, a heading and paragraphs.
#[handler]
fn numbered_page(Path(n): Path<usize>) -> Html<String> {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Page {n}</title></head>\
         <body><h1>Page {n}</h1>"
    );
    for p in 1..=PARAGRAPHS {
        html.push_str(&format!("<p>Paragraph {p} of page {n}. {PARAGRAPH}</p>"));
    }
    html.push_str("</body></html>");
    Html(html)
}

/// RSS and PSS in bytes summed over `root` and all its descendants, and how many there are.
/// RSS counts pages shared between Chromium's processes once per process; PSS splits them.
fn tree_memory(root: u32) -> anyhow::Result<(u64, u64, usize)> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(parent) = parent_of(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let (mut rss, mut pss, mut count) = (0, 0, 0);
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        // A process may exit between the listing and here.
        if let Some(bytes) = status_field(pid, "VmRSS:") {
            rss += bytes;
            pss += rollup_pss(pid).unwrap_or(0);
            count += 1;
        }
        todo.extend(children.get(&pid).into_iter().flatten());
    }
    Ok((rss, pss, count))
}

fn own_rss() -> anyhow::Result<u64> {
    status_field(std::process::id(), "VmRSS:").context("reading this process's VmRSS")
}

/// The parent pid, from /proc/<pid>/stat (fields after the command name's last ')').
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    fields.nth(1)?.parse().ok()
}

/// A `kB` line of /proc/<pid>/status, in bytes.
fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kb_line(&status, name)
}

/// `Pss:` of /proc/<pid>/smaps_rollup, in bytes.
fn rollup_pss(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kb_line(&rollup, "Pss:")
}

fn kb_line(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Nearest-rank percentile of sorted `values`; NaN when empty.
fn pct(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn ms(value: f64) -> String {
    format!("{value:.0} ms")
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}
