//! Byte classes of RFC 9110 and RFC 3986, as lookup tables.

macro_rules! table {
    ($f:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        t
    }};
}

const fn is_tchar_fn(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

/// RFC 3986 unreserved and sub-delims: a reg-name (§3.2.2) is these and percent-encoding.
const fn is_reg_name_fn(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// Bytes allowed in a request-target: every visible ASCII character but `#`, and every byte
/// with the high bit set (which [`crate::target`] then requires to be UTF-8).
///
/// This is wider than RFC 3986 on purpose. Browsers leave `[ ] { } | ^ \ \`` unencoded in
/// paths or queries (the WHATWG URL standard's percent-encode sets) and common clients send
/// `" < >` as typed, so refusing them refuses real sites' traffic; none of them can end the
/// target or confuse its framing, and URL normalisation percent-encodes them before rules
/// see the path. What stays refused breaks parsing: controls, space, DEL, a fragment (`#`,
/// which a client never sends), bad percent-encoding and bytes that are not UTF-8.
const fn is_target_fn(b: u8) -> bool {
    (b > 0x20 && b < 0x7f && b != b'#') || b >= 0x80
}

/// field-vchar, SP, HTAB and obs-text (RFC 9110 §5.5).
const fn is_field_value_fn(b: u8) -> bool {
    b == b'\t' || b == b' ' || (b >= 0x21 && b != 0x7f)
}

static TCHAR: [bool; 256] = table!(is_tchar_fn);
static TARGET: [bool; 256] = table!(is_target_fn);
static REG_NAME: [bool; 256] = table!(is_reg_name_fn);
static FIELD_VALUE: [bool; 256] = table!(is_field_value_fn);

/// A token character (RFC 9110 §5.6.2).
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// A byte allowed in a request-target.
#[inline]
pub fn is_target_byte(b: u8) -> bool {
    TARGET[b as usize]
}

/// An unreserved or sub-delims character: a reg-name byte other than percent-encoding.
#[inline]
pub fn is_reg_name_byte(b: u8) -> bool {
    REG_NAME[b as usize]
}

/// A byte allowed in a field value.
#[inline]
pub fn is_field_value_byte(b: u8) -> bool {
    FIELD_VALUE[b as usize]
}

/// Index of the first non-token byte of `s`, if any.
#[inline]
pub fn first_non_token(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| !is_tchar(b))
}

/// A `u64` with `b` in each of its eight bytes.
const fn lanes(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

const HIGH_BITS: u64 = lanes(0x80);

/// The high bit of each byte lane of `v` (whose lanes are all below 0x80) that lies in
/// `lo..=hi`. The sums cannot carry from one lane into the next: each stays below 0x100.
const fn lanes_in_range(v: u64, lo: u8, hi: u8) -> u64 {
    v.wrapping_add(lanes(0x80 - lo)) & !v.wrapping_add(lanes(0x7f - hi)) & HIGH_BITS
}

/// The high bit of each byte lane of `x` that is an ASCII letter, digit or `-`: the token
/// characters field names are nearly always made of.
const fn common_token_lanes(x: u64) -> u64 {
    let low7 = x & !HIGH_BITS;
    let letter = lanes_in_range(low7 | lanes(0x20), b'a', b'z');
    let digit = lanes_in_range(low7, b'0', b'9');
    let dash = lanes_in_range(low7, b'-', b'-');
    (letter | digit | dash) & !x
}

/// The high bit of each byte lane of `x` that is a lowercase letter, a digit, `-` or `.`:
/// a host name already in normal form.
const fn lower_host_lanes(x: u64) -> u64 {
    let low7 = x & !HIGH_BITS;
    let letter = lanes_in_range(low7, b'a', b'z');
    let digit = lanes_in_range(low7, b'0', b'9');
    let dash_dot = lanes_in_range(low7, b'-', b'.');
    (letter | digit | dash_dot) & !x
}

const fn is_lower_host_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
}

/// The high bit of each byte lane of `x` that is a letter, a digit, or one of `-./_=&`: the
/// bytes of a path and query that need no more than the class check.
const fn plain_target_lanes(x: u64) -> u64 {
    let low7 = x & !HIGH_BITS;
    let letter = lanes_in_range(low7 | lanes(0x20), b'a', b'z');
    // '-', '.', '/' and the digits are contiguous.
    let dash_to_nine = lanes_in_range(low7, b'-', b'9');
    let others = lanes_in_range(low7, b'_', b'_')
        | lanes_in_range(low7, b'=', b'=')
        | lanes_in_range(low7, b'&', b'&');
    (letter | dash_to_nine | others) & !x
}

const fn is_plain_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'/' | b'_' | b'=' | b'&')
}

/// How many bytes at the start of `s` are in a class: eight at a time while `word` marks
/// all eight lanes, then one at a time while `byte` holds. A scan takes a few steps rather
/// than a branch per byte.
#[inline(always)]
fn class_prefix_len(s: &[u8], word: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> usize {
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let other = !word(u64::from_le_bytes(bytes)) & HIGH_BITS;
        if other != 0 {
            i += (other.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    while i < s.len() && byte(s[i]) {
        i += 1;
    }
    i
}

/// How many bytes at the start of `s` are token characters.
#[inline]
pub fn token_prefix_len(s: &[u8]) -> usize {
    class_prefix_len(s, common_token_lanes, is_tchar)
}

/// How many bytes at the start of `s` are lowercase letters, digits, `-` or `.`.
#[inline]
pub fn lower_host_prefix_len(s: &[u8]) -> usize {
    class_prefix_len(s, lower_host_lanes, is_lower_host_byte)
}

/// How many bytes at the start of `s` are letters, digits or `-./_=&` (target bytes that
/// need no more than the class check).
#[inline]
pub fn plain_target_prefix_len(s: &[u8]) -> usize {
    class_prefix_len(s, plain_target_lanes, is_plain_target_byte)
}

/// The high bit of each byte lane of `x` that is allowed in a field value: HTAB, SP, a
/// visible character (not DEL), or obs-text (any byte with the high bit set).
const fn field_value_lanes(x: u64) -> u64 {
    // Computed as the complement of the lanes not allowed (controls other than HTAB, and
    // DEL): the scan complements it again, and the two cancel out.
    let low7 = x & !HIGH_BITS;
    let control = !lanes_in_range(low7, 0x20, 0x7f) & HIGH_BITS;
    let tab = lanes_in_range(low7, b'\t', b'\t');
    let del = lanes_in_range(low7, 0x7f, 0x7f);
    !((control & !tab | del) & !x) & HIGH_BITS
}

/// How many bytes at the start of `s` are allowed in a field value: the first byte after them
/// (if any) is where the line ends when it is CR, and an error otherwise. Finding the line's
/// end and checking the value are the same scan.
#[inline]
pub fn field_value_prefix_len(s: &[u8]) -> usize {
    class_prefix_len(s, field_value_lanes, is_field_value_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every position of runs of every length up to 20, among other
    /// bytes of the class, at the end of the input and before a terminator: the
    /// word-at-a-time scans agree with their byte classes.
    #[test]
    fn word_scans_agree_with_the_byte_classes() {
        /// The scan, its word class, that class byte by byte, the scan's whole byte class,
        /// and bytes of the class to surround the probe with.
        type Case = (
            fn(&[u8]) -> usize,
            fn(u64) -> u64,
            fn(u8) -> bool,
            fn(u8) -> bool,
            &'static [u8],
        );
        let scans: [Case; 4] = [
            (
                token_prefix_len,
                common_token_lanes,
                |b| b.is_ascii_alphanumeric() || b == b'-',
                is_tchar,
                b"aZ7-_~",
            ),
            (
                lower_host_prefix_len,
                lower_host_lanes,
                is_lower_host_byte,
                is_lower_host_byte,
                b"az0.-",
            ),
            (
                plain_target_prefix_len,
                plain_target_lanes,
                is_plain_target_byte,
                is_plain_target_byte,
                b"aZ9/._=&",
            ),
            (
                field_value_prefix_len,
                field_value_lanes,
                is_field_value_byte,
                is_field_value_byte,
                b"a \t\x80\xff~",
            ),
        ];
        for (scan, word, word_class, class, fillers) in scans {
            for b in 0..=255u8 {
                assert_eq!(word(lanes(b)) != 0, word_class(b), "{b:#04x}");
            }
            for len in 0..20 {
                for at in 0..=len {
                    for b in 0..=255u8 {
                        for &filler in fillers {
                            let mut s = vec![filler; len];
                            if at < len {
                                s[at] = b;
                            }
                            // Ending at the end of the input, and ending at a terminator.
                            for suffix in [&b""[..], b": v\r\n"] {
                                let mut s = s.clone();
                                s.extend_from_slice(suffix);
                                let naive = s.iter().position(|&c| !class(c)).unwrap_or(s.len());
                                assert_eq!(scan(&s), naive, "{:?}", String::from_utf8_lossy(&s));
                            }
                        }
                    }
                }
            }
        }
    }
}
