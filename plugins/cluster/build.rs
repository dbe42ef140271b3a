fn main() {
    xp_plugin_build::install_manifest("cluster");
}
