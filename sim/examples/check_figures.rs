fn main() {
    use kzsim_sim::check::*;
    use std::time::{Duration, Instant};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/histories/porcupine/jepsen");
    let mut total = 0.0;
    let mut worst = (0.0, String::new());
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let opts = CheckOptions { timeout: Some(Duration::from_secs(2)), ..CheckOptions::default() };
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let parsed = Format::PorcupineEtcd.parse(&text).unwrap();
        let ops = parsed.operations().unwrap();
        let t = Instant::now();
        let r = check_with(ModelKind::CasRegister, &serde_json::Value::Null, &ops, &parsed.lines, &opts).unwrap();
        let dt = t.elapsed().as_secs_f64();
        total += dt;
        if dt > worst.0 { worst = (dt, f.display().to_string()); }
        println!("{} {:?} {:.2}ms", f.display(), r.verdict, dt * 1e3);
    }
    let kdir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/histories/porcupine/kv");
    for name in ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"] {
        let text = std::fs::read_to_string(format!("{kdir}/{name}.txt")).unwrap();
        let parsed = Format::PorcupineKv.parse(&text).unwrap();
        let ops = parsed.operations().unwrap();
        let t = Instant::now();
        let r = check_with(ModelKind::Kv, &serde_json::Value::Null, &ops, &parsed.lines, &opts).unwrap();
        println!("kv {name} {:?} {:.2}ms", r.verdict, t.elapsed().as_secs_f64() * 1e3);
    }
    println!("etcd total {:.1} ms, worst {:.1} ms {}", total*1e3, worst.0*1e3, worst.1);
}
#[allow(dead_code)]
fn unused() {}
