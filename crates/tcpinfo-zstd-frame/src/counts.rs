//! Byte counts of the literals M-Lab ArchivalRecord lines leave after matching (scaled),
//! from which the fixed literal Huffman table is built; every printable ASCII byte and
//! `\n` gets at least a count of 1, so any such byte has a code.

pub(crate) const LITERAL_COUNTS: [u16; 128] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 105, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 2534, 0, 0, 0, 0, 0, 0, 0, 0, 84, 1095, 216, 77, 1619,
    968, 436, 270, 314, 299, 183, 257, 125, 282, 137, 535, 0, 0, 915, 0, 0,
    0, 30586, 1198, 1055, 751, 715, 313, 239, 270, 841, 221, 164, 334, 714, 135, 274,
    359, 1110, 170, 88, 283, 381, 148, 285, 161, 381, 215, 105, 0, 105, 0, 1,
    0, 388, 186, 155, 59, 392, 74, 996, 110, 419, 67, 190, 695, 301, 319, 221,
    208, 125, 221, 459, 552, 412, 78, 796, 77, 123, 71, 106, 0, 106, 0, 0,
];

/// The counts as the table builder takes them.
pub(crate) fn literal_counts() -> [u32; 256] {
    let mut c = [0u32; 256];
    for (i, &n) in LITERAL_COUNTS.iter().enumerate() {
        c[i] = u32::from(n);
    }
    for b in (0x20..=0x7E).chain([usize::from(b'\n')]) {
        c[b] = c[b].max(1);
    }
    c
}
