/// The release this build is, printed by `tally --version` and exported as `tally_build_info`.
public enum TallyVersion {
    public static let version = "0.5.0"
}
