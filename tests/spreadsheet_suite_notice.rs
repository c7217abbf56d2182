//! Not a test of the service: a loud line in the output of every test run
//! saying whether export files were opened in a spreadsheet engine.

fn main() {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("soffice").is_file()));
    if found {
        println!(
            "Spreadsheet suite: export files are opened in LibreOffice (soffice is installed)."
        );
        return;
    }
    let banner = "!".repeat(78);
    println!("{banner}");
    println!("!! Spreadsheet suite SKIPPED: export files were not opened in a spreadsheet.");
    println!("!! Install LibreOffice's engine and run it again:");
    println!("!!     apt-get install -y libreoffice-calc-nogui");
    println!("!!     cargo test --test api spreadsheet_engine");
    println!("!! (.ci/run installs it.)");
    println!("{banner}");
}
