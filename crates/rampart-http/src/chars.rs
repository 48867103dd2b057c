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

/// RFC 3986 characters allowed in a request-target (unreserved, sub-delims, ":", "@", "/",
/// "?", and "%" which is checked separately). Not "#", "[", "]" (only in an authority).
const fn is_target_fn(b: u8) -> bool {
    is_reg_name_fn(b) || matches!(b, b':' | b'@' | b'/' | b'?' | b'%')
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

/// Whether every byte of `s` is allowed in a field value. The class is computed rather than
/// looked up, and without early exit, so that the loop vectorises.
#[inline]
pub fn all_field_value_bytes(s: &[u8]) -> bool {
    s.iter()
        .fold(false, |bad, &b| bad | !is_field_value_fn(b))
        .eq(&false)
}

/// Index of the first non-token byte of `s`, if any.
#[inline]
pub fn first_non_token(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| !is_tchar(b))
}
