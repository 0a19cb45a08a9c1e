pub fn gpu_bundle(_d: &str) -> Result<(), String> { Err("todo".into()) }
