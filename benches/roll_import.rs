//! The roll import at national scale: generates a synthetic school directory
//! and roll of `KIM_BENCH_PUPILS` pupils (default 1,000,000) across
//! `KIM_BENCH_SCHOOLS` schools (default 20,000) in a temporary folder, then
//! runs the real `kim` binary: `kim schools import`, `kim roll import` into
//! an empty store, and `kim roll import` again (replacing that roll, the
//! steady state), each under `/usr/bin/time -v` (or, without it, polling
//! VmHWM in /proc). Prints rows, wall time, rows/s, peak RSS, CPU time,
//! store size on disk and bytes per pupil. Nothing is asserted beyond the
//! imports succeeding: it prints figures.
//!
//! Run it on its own (the binary it drives is `target/release/kim`, which
//! `cargo bench` builds; it is built here if missing):
//!
//! ```sh
//! KIM_BENCH_PUPILS=9000000 cargo bench --bench roll_import
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `KIM_BENCH_PUPILS` | 1000000 | pupils on the roll |
//! | `KIM_BENCH_SCHOOLS` | 20000 | schools in the directory |
//! | `KIM_BENCH_REIMPORT` | 1 | 0 skips the second (replacing) import |
//! | `KIM_BENCH_KEEP` | 0 | 1 keeps the temporary folder and prints it |
//!
//! The folder is made in `$TMPDIR` (default `/tmp`): set it to measure on
//! the disk kim will use.

#[path = "common/mod.rs"]
mod common;
use common::{du, env_num, git_revision, machine};

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KIM: &str = env!("CARGO_BIN_EXE_kim");
const TIME: &str = "/usr/bin/time";

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

// ---------------------------------------------------------------------------
// Synthetic data: varied enough that every blind-index key differs in
// practice (names × suffixes × ~5,100 dates of birth), not realistic.

const GIVEN: &[&str] = &[
    "Oliver",
    "George",
    "Arthur",
    "Noah",
    "Muhammad",
    "Leo",
    "Oscar",
    "Harry",
    "Archie",
    "Jack",
    "Henry",
    "Charlie",
    "Freddie",
    "Theodore",
    "Thomas",
    "Finley",
    "Theo",
    "Alfie",
    "Jacob",
    "William",
    "Isaac",
    "Tommy",
    "Lucas",
    "Elijah",
    "Teddy",
    "Arlo",
    "James",
    "Edward",
    "Albie",
    "Joshua",
    "Max",
    "Mohammed",
    "Ezra",
    "Alexander",
    "Reggie",
    "Jude",
    "Luca",
    "Ronnie",
    "Harrison",
    "Rory",
    "Louie",
    "Hugo",
    "Sonny",
    "Jaxon",
    "Toby",
    "Joseph",
    "Ethan",
    "Benjamin",
    "Daniel",
    "Samuel",
    "Adam",
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Ivy",
    "Freya",
    "Lily",
    "Florence",
    "Mia",
    "Willow",
    "Rosie",
    "Sophia",
    "Isabella",
    "Grace",
    "Daisy",
    "Sienna",
    "Poppy",
    "Elsie",
    "Emily",
    "Ella",
    "Evelyn",
    "Phoebe",
    "Sofia",
    "Evie",
    "Charlotte",
    "Harper",
    "Millie",
    "Matilda",
    "Maya",
    "Sophie",
    "Alice",
    "Emilia",
    "Isabelle",
    "Ruby",
    "Luna",
    "Maisie",
    "Aria",
    "Penelope",
    "Mila",
    "Bonnie",
    "Eva",
    "Hallie",
    "Eliza",
    "Ada",
    "Violet",
    "Esme",
    "Arabella",
    "Imogen",
    "Jessica",
    "Zoë",
    "Siobhán",
    "Łucja",
    "Oliwia",
    "Zofia",
    "Aoife",
    "Niamh",
    "Saoirse",
    "Ciarán",
    "Seán",
    "Pádraig",
    "Renée",
    "Chloé",
    "Anaïs",
    "José",
    "Björn",
    "Søren",
    "Jürgen",
    "Ayşe",
    "Elif",
    "Mehmet",
    "Fatima",
    "Aisha",
    "Zainab",
    "Maryam",
    "Hafsa",
    "Yusuf",
    "Ibrahim",
    "Omar",
    "Ali",
    "Hamza",
    "Zayn",
    "Aarav",
    "Vihaan",
    "Arjun",
    "Priya",
    "Ananya",
    "Diya",
    "Kavya",
    "Chen",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Kwame",
    "Kofi",
    "Ama",
    "Chinedu",
    "Ngozi",
    "Tomasz",
    "Jakub",
    "Kacper",
    "Wiktoria",
    "Natalia",
    "Andrei",
    "Ioana",
    "Mihai",
    "Elena",
    "Dmitri",
    "Anastasia",
    "Nikolai",
    "Eszter",
    "Bence",
    "Lukas",
    "Jonas",
    "Emma",
    "Hannah",
    "Lea",
    "Marie",
    "Noor",
    "Layla",
    "Amira",
    "Rania",
    "Dara",
    "Callum",
    "Lewis",
    "Kyle",
    "Ewan",
    "Fraser",
    "Ross",
    "Iona",
    "Eilidh",
    "Morven",
    "Rhys",
    "Dylan",
    "Cerys",
    "Seren",
    "Ffion",
    "Gethin",
    "Owain",
    "Bethan",
    "Carys",
    "Mari",
];

const FAMILY: &[&str] = &[
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "James",
    "Scott",
    "Phillips",
    "Watson",
    "Davis",
    "Parker",
    "Price",
    "Bennett",
    "Young",
    "Griffiths",
    "Mitchell",
    "Kelly",
    "Cook",
    "Carter",
    "Richardson",
    "Bailey",
    "Collins",
    "Bell",
    "Shaw",
    "Murphy",
    "Miller",
    "Cox",
    "Richards",
    "Khan",
    "Marshall",
    "Anderson",
    "Simpson",
    "Ellis",
    "Adams",
    "Singh",
    "Begum",
    "Wilkinson",
    "Foster",
    "Chapman",
    "Powell",
    "Webb",
    "Rogers",
    "Gray",
    "Mason",
    "Ali",
    "Hunt",
    "Hussain",
    "Campbell",
    "Matthews",
    "Owen",
    "Palmer",
    "Holmes",
    "Mills",
    "Barnes",
    "Knight",
    "Lloyd",
    "Butler",
    "Russell",
    "Barker",
    "Fisher",
    "Stevens",
    "Jenkins",
    "Murray",
    "Dixon",
    "Harvey",
    "Graham",
    "Pearson",
    "Ahmed",
    "Fletcher",
    "Walsh",
    "Kaur",
    "Gibson",
    "Howard",
    "Andrews",
    "Stewart",
    "Elliott",
    "Reynolds",
    "Saunders",
    "Payne",
    "Fox",
    "Ford",
    "Pearce",
    "Day",
    "Brooks",
    "West",
    "Lawrence",
    "Cole",
    "Atkinson",
    "Bradley",
    "Spencer",
    "Gill",
    "Dawson",
    "Ball",
    "Burton",
    "O'Brien",
    "Watts",
    "Rose",
    "Booth",
    "Perry",
    "Ryan",
    "Grant",
    "Wells",
    "Armstrong",
    "Francis",
    "Rees",
    "Hayes",
    "Hart",
    "Hudson",
    "Newman",
    "Barrett",
    "Webster",
    "Hunter",
    "Gregory",
    "Carr",
    "Lowe",
    "Page",
    "Marsh",
    "Riley",
    "Dunn",
    "Woods",
    "Parsons",
    "Berry",
    "Stone",
    "Reid",
    "Holland",
    "Hawkins",
    "Harding",
    "Porter",
    "Robertson",
    "Newton",
    "Oliver",
    "Reed",
    "Kennedy",
    "Williamson",
    "Bird",
    "Gardner",
    "Shah",
    "Dean",
    "Lane",
    "Cooke",
    "Bates",
    "Henderson",
    "Parry",
    "Burgess",
    "Bishop",
    "Walton",
    "Burns",
    "Nicholson",
    "Shepherd",
    "Ross",
    "Cross",
    "Long",
    "Freeman",
    "Warren",
    "Nicholls",
    "Hamilton",
    "Byrne",
    "Sutton",
    "McDonald",
    "Yates",
    "Hodgson",
    "Robson",
    "Curtis",
    "Hopkins",
    "O'Connor",
    "Harper",
    "Coleman",
    "Watkins",
    "Moss",
    "McCarthy",
    "Chambers",
    "O'Neill",
    "Griffin",
    "Sharp",
    "Hardy",
    "Wheeler",
    "Potter",
    "Osborne",
    "Johnston",
    "Gordon",
    "Doyle",
    "Wallace",
    "George",
    "Jordan",
    "Hutchinson",
    "Rowe",
    "Burke",
    "May",
    "Pritchard",
    "Gilbert",
    "Willis",
    "Higgins",
    "Read",
    "Miah",
    "Stephens",
    "Arnold",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kamińska",
    "Lewandowski",
    "Zieliński",
    "Popescu",
    "Ionescu",
    "Müller",
    "Schmidt",
    "Schäfer",
    "García",
    "Fernández",
    "López",
    "Martínez",
    "Rodríguez",
    "Pérez",
    "Gonçalves",
    "Conceição",
    "Nguyễn",
    "Trần",
    "Lê",
    "Wang",
    "Zhang",
    "Liu",
    "Chen",
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Öztürk",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Osei",
    "Mohamed",
    "Abdi",
    "Hassan",
    "Rahman",
    "Chowdhury",
    "Islam",
    "Uddin",
    "Akhtar",
    "Iqbal",
    "Malik",
    "Sharma",
    "Gupta",
    "Kumar",
    "Mistry",
    "Shah-Patel",
    "Smith-Jones",
    "Ní Bhriain",
    "Mac Giolla",
    "Ó Súilleabháin",
    "Van der Berg",
    "De Souza",
    "D'Angelo",
    "St. John",
    "Le Roux",
    "Papadopoulos",
    "Georgiou",
    "Ivanov",
    "Petrova",
];

/// Three lower-case letters from `n`, so family names vary beyond the list.
fn letters(n: usize, out: &mut String) {
    let n = n % (26 * 26 * 26);
    for d in [n / 676, (n / 26) % 26, n % 26] {
        out.push((b'a' + d as u8) as char);
    }
}

fn write_schools(path: &Path, schools: usize) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "urn,name,dsl_name,dsl_email,deputy_email,phone")?;
    for i in 0..schools {
        let urn = 100_000 + i;
        let deputy = if i % 3 == 0 {
            format!("deputy{urn}@school.example")
        } else {
            String::new()
        };
        writeln!(
            w,
            "{urn},\"{} School, Town {}\",{} {},dsl{urn}@school.example,{deputy},01632 {:06}",
            FAMILY[i % FAMILY.len()],
            i % 997,
            GIVEN[i % GIVEN.len()],
            FAMILY[(i / 7) % FAMILY.len()],
            i % 1_000_000
        )?;
    }
    w.flush()
}

/// Writes the roll; returns its size in bytes.
fn write_roll(path: &Path, pupils: usize, schools: usize) -> std::io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        w,
        "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn"
    )?;
    // Dates of birth over 14 school years, as days since 2008-01-01.
    let first = jiff::civil::date(2008, 1, 1);
    let dates: Vec<String> = (0..14 * 365)
        .map(|d| {
            first
                .checked_add(jiff::Span::new().days(d))
                .unwrap()
                .to_string()
        })
        .collect();
    let mut family = String::new();
    for i in 0..pupils {
        // A cheap mix so neighbouring rows differ in every column.
        let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = (h ^ (h >> 29)) as usize;
        let given = GIVEN[h % GIVEN.len()];
        family.clear();
        family.push_str(FAMILY[(h >> 8) % FAMILY.len()]);
        if h % 5 == 0 {
            family.push('-');
            family.push_str(FAMILY[(h >> 16) % FAMILY.len()]);
        }
        letters(i / 7, &mut family);
        let other = match h % 10 {
            0 => GIVEN[(h >> 20) % GIVEN.len()].to_owned(),
            1 => format!(
                "{};{}",
                GIVEN[(h >> 20) % GIVEN.len()],
                GIVEN[(h >> 28) % GIVEN.len()]
            ),
            _ => String::new(),
        };
        let dob = &dates[(h >> 12) % dates.len()];
        let postcode = if h % 4 == 0 {
            String::new()
        } else {
            format!(
                "{}{} {}{}{}",
                ["ME", "CT", "TN", "DA", "BR", "SE", "N", "M", "B", "LS"][(h >> 4) % 10],
                (h >> 6) % 20 + 1,
                (h >> 10) % 10,
                (b'A' + ((h >> 14) % 26) as u8) as char,
                (b'A' + ((h >> 18) % 26) as u8) as char
            )
        };
        let urn = 100_000 + (h >> 3) % schools;
        writeln!(
            w,
            "LA{i:010},{given},{family},{other},{dob},{postcode},{urn}"
        )?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

// ---------------------------------------------------------------------------
// Running the binary

struct Run {
    wall: Duration,
    peak_rss_kib: Option<u64>,
    user_s: Option<f64>,
    sys_s: Option<f64>,
    stdout: String,
}

fn time_field<'a>(report: &'a str, name: &str) -> Option<&'a str> {
    report
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name)?.trim().strip_prefix(':'))
        .map(str::trim)
}

/// Runs `kim --config CONFIG ARGS…`, under `/usr/bin/time -v` when there is
/// one, else polling `VmHWM` while it runs. Panics if it fails.
fn run_kim(config: &Path, args: &[&str]) -> Run {
    let use_time = Path::new(TIME).exists();
    let mut cmd = if use_time {
        let mut c = Command::new(TIME);
        c.arg("-v").arg(KIM);
        c
    } else {
        Command::new(KIM)
    };
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start kim");
    let mut hwm = None;
    if !use_time {
        let status = format!("/proc/{}/status", child.id());
        while child.try_wait().expect("wait for kim").is_none() {
            if let Some(kb) = std::fs::read_to_string(&status).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            }) {
                hwm = Some(kb);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let out = child.wait_with_output().expect("kim output");
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        panic!("kim {args:?} failed ({}):\n{stdout}\n{stderr}", out.status);
    }
    let secs = |name: &str| time_field(&stderr, name).and_then(|v| v.parse::<f64>().ok());
    Run {
        wall,
        peak_rss_kib: if use_time {
            time_field(&stderr, "Maximum resident set size (kbytes)").and_then(|v| v.parse().ok())
        } else {
            hwm
        },
        user_s: secs("User time (seconds)"),
        sys_s: secs("System time (seconds)"),
        stdout,
    }
}

fn report(what: &str, rows: u64, unit: &str, run: &Run, store: &Path) {
    let secs = run.wall.as_secs_f64();
    let (alloc, apparent, _) = du(store);
    println!("{what}");
    println!("  rows          {rows}");
    println!("  wall time     {secs:.1} s");
    println!("  rows/s        {:.0}", rows as f64 / secs);
    match run.peak_rss_kib {
        Some(kb) => println!("  peak RSS      {:.0} MiB", kb as f64 / 1024.0),
        None => println!("  peak RSS      unknown"),
    }
    if let (Some(u), Some(s)) = (run.user_s, run.sys_s) {
        println!(
            "  CPU           {u:.1} s user + {s:.1} s system ({:.2} cores busy)",
            (u + s) / secs
        );
    }
    println!(
        "  store on disk {:.0} MiB (du; {:.0} MiB apparent), {:.0} bytes/{unit}",
        mib(alloc),
        mib(apparent),
        alloc as f64 / rows.max(1) as f64
    );
    if let Some(line) = run.stdout.lines().find(|l| l.starts_with("imported")) {
        println!("  kim says      {line}");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let pupils: usize = env_num("KIM_BENCH_PUPILS", 1_000_000usize).max(1);
    let schools: usize = env_num("KIM_BENCH_SCHOOLS", 20_000usize).clamp(1, 900_000);
    let reimport = env_num("KIM_BENCH_REIMPORT", 1u8) != 0;
    let keep = env_num("KIM_BENCH_KEEP", 0u8) != 0;

    if !Path::new(KIM).exists() {
        eprintln!("{KIM} is missing: cargo build --release --bin kim");
        let ok = Command::new(env!("CARGO"))
            .args(["build", "--release", "--bin", "kim", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cargo build --release --bin kim failed");
    }

    let tmp = tempfile::Builder::new()
        .prefix("kim-roll-bench-")
        .tempdir()
        .expect("temporary folder");
    let dir = tmp.path();
    println!("kim roll import benchmark");
    println!("machine:  {}", machine());
    println!("revision: {}", git_revision());
    println!("kim:      {KIM}");
    println!("folder:   {}", dir.display());

    let key = dir.join("master.key");
    kim::store::crypto::write_new_key(&key).expect("master key");
    let store: PathBuf = dir.join("store");
    let config = dir.join("kim.toml");
    std::fs::write(
        &config,
        kim::dev::config(&kim::dev::Options {
            store: store.clone(),
            metrics: None,
            ..kim::dev::Options::loopback()
        }),
    )
    .expect("config");

    let schools_csv = dir.join("schools.csv");
    let roll_csv = dir.join("roll.csv");
    let started = Instant::now();
    write_schools(&schools_csv, schools).expect("schools.csv");
    let roll_bytes = write_roll(&roll_csv, pupils, schools).expect("roll.csv");
    println!(
        "generated {schools} schools and {pupils} pupils ({:.0} MiB of CSV, {:.0} bytes/row) in {:.1} s",
        mib(roll_bytes),
        roll_bytes as f64 / pupils as f64,
        started.elapsed().as_secs_f64()
    );
    println!();

    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
    let run = run_kim(&config, &["schools", "import", &path(&schools_csv)]);
    report("kim schools import", schools as u64, "school", &run, &store);

    let run = run_kim(&config, &["roll", "import", &path(&roll_csv)]);
    report(
        "kim roll import (empty store)",
        pupils as u64,
        "pupil",
        &run,
        &store,
    );

    if reimport {
        let run = run_kim(&config, &["roll", "import", &path(&roll_csv)]);
        report(
            "kim roll import (replacing that roll)",
            pupils as u64,
            "pupil",
            &run,
            &store,
        );
    }

    let stats = run_kim(&config, &["roll", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stats.stdout).expect("roll stats JSON");
    assert_eq!(v["pupils"], pupils as u64, "roll stats disagree");
    println!(
        "roll stats: {} pupils at {} schools (generation {})",
        v["pupils"], v["schools"], v["generation"]
    );

    if keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
}
