//! `jobd`: cron as a replicated 9P file system. This binary will parse
//! flags, start tracing and run the node; the replicated core and the job
//! tree arrive with issues 3 and 4.

fn main() {
    eprintln!("jobd: the job file tree is not served yet; try the ramfs example (see README.md)");
    std::process::exit(2);
}
