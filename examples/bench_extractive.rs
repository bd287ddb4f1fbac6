//! `bench_extractive`: how fast the built-in extractive summariser summarises a 50 KB text
//! (summaries/s, mean and worst ms). The text repeats a paragraph with its sentences rotated
//! and its figures and words varied, so no two copies are the same. Run it in release:
//! `cargo run --release --example bench_extractive [-- --runs 200 --kilobytes 50]`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use clap::Parser;
use workhorse::summarise::extractive::{ExtractiveOptions, summarise};

/// Sentences of the paragraph that is repeated; `{n}`, `{m}` and `{w}` are varied per copy.
const SENTENCES: [&str; 10] = [
    "The river delta supports {n} species of birds that nest in the reed beds each spring.",
    "Farmers along the {w} bank divert about {m} per cent of the water to irrigate rice fields.",
    "Sediment carried from the mountains builds the delta outward by a few metres every year.",
    "Dr. Okafor's survey counted {n} nesting pairs, e.g. herons and egrets, in the {w} marshes.",
    "When the dams upstream hold back floods, less sediment arrives and the coastline retreats.",
    "Fishermen report that catches have fallen by {m} per cent since the {w} canal was dug.",
    "The delta's wetlands also filter pollutants before the water reaches the sea.",
    "Planners in the capital weigh new dams against the needs of the {n} villages downstream.",
    "Seasonal floods once renewed the soil, but embankments now confine the river to its bed.",
    "Conservation groups want {m} square kilometres of the {w} wetlands protected by law.",
];
const WORDS: [&str; 7] = [
    "northern", "eastern", "old", "lower", "western", "salt", "upper",
];

/// Sizes of the run.
#[derive(Parser)]
#[command(about = "Benchmark the built-in extractive summariser")]
struct Args {
    /// Timed summaries (after one warm-up).
    #[arg(long, default_value_t = 200)]
    runs: u32,
    /// Size of the text in kilobytes.
    #[arg(long, default_value_t = 50)]
    kilobytes: usize,
}

/// A text of at least `bytes` bytes: paragraphs of the sentences, rotated and varied.
fn text_of(bytes: usize) -> String {
    let mut text = String::new();
    for k in 0usize.. {
        if text.len() >= bytes {
            break;
        }
        for s in 0..SENTENCES.len() {
            let sentence = SENTENCES[(s + k) % SENTENCES.len()]
                .replace("{n}", &(12 + k * 7 % 390).to_string())
                .replace("{m}", &(3 + (k + s) % 41).to_string())
                .replace("{w}", WORDS[(k + s) % WORDS.len()]);
            text.push_str(&sentence);
            text.push(if s % 4 == 3 { '\n' } else { ' ' });
        }
        text.push_str("\n\n");
    }
    text
}

fn main() {
    let args = Args::parse();
    let text = text_of(args.kilobytes * 1000);
    let options = ExtractiveOptions {
        max_sentences: 8,
        max_chars: 1200,
        language: None,
    };
    let summary = summarise(&text, &options);
    println!(
        "text: {} bytes, {} sentences; summary: {} sentences, {} chars",
        text.len(),
        summary.total_sentences,
        summary.sentences.len(),
        summary.text.chars().count()
    );
    println!("{}\n", summary.text);

    let (mut total, mut worst) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..args.runs {
        let start = Instant::now();
        black_box(summarise(black_box(&text), &options));
        let took = start.elapsed();
        total += took;
        worst = worst.max(took);
    }
    let mean = total / args.runs.max(1);
    println!(
        "{} runs: {:.1} summaries/s, mean {:.2} ms, worst {:.2} ms",
        args.runs,
        f64::from(args.runs) / total.as_secs_f64(),
        mean.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
}
