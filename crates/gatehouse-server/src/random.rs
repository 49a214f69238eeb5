//! Randomness from the operating system (aws-lc-rs), for tokens, salts and keys; core takes
//! random bytes as arguments and never draws them itself.

/// `N` random bytes from the OS RNG (tokens, salts, keys).
#[expect(
    clippy::panic,
    reason = "without a working RNG no secret can be made safely: stop rather than go on"
)]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        // Without a working RNG no secret can be made safely.
        panic!("the operating system's random number generator failed");
    }
    b
}
