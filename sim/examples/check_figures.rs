fn main() {
    use std::time::Instant;
    use kzsim_sim::check::*;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/histories/porcupine/jepsen");
    let mut total = 0.0;
    let mut worst = (0.0, String::new());
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let parsed = Format::PorcupineEtcd.parse(&text).unwrap();
        let ops = parsed.operations().unwrap();
        let t = Instant::now();
        let r = check_with(ModelKind::CasRegister, &serde_json::Value::Null, &ops, &parsed.lines, &CheckOptions::default()).unwrap();
        let dt = t.elapsed().as_secs_f64();
        total += dt;
        if dt > worst.0 { worst = (dt, f.display().to_string()); }
        let _ = r;
    }
    println!("etcd total {:.1} ms, worst {:.1} ms {}", total*1e3, worst.0*1e3, worst.1);
}
