//! Byte counts of the literals M-Lab ArchivalRecord lines leave after matching (scaled),
//! from which the fixed literal Huffman table is built; every printable ASCII byte and
//! `\n` gets at least a count of 1, so any such byte has a code.

pub(crate) const LITERAL_COUNTS: [u16; 128] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 193, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 3174, 0, 0, 0, 0, 0, 0, 0, 0, 163, 1193, 347, 145, 1216,
    1379, 690, 500, 589, 631, 315, 509, 244, 483, 254, 928, 0, 0, 548, 0, 0,
    0, 14795, 1993, 1844, 1305, 1208, 566, 417, 483, 1324, 390, 298, 615, 1206, 255, 517,
    619, 1496, 306, 166, 509, 706, 273, 512, 272, 538, 382, 193, 0, 193, 0, 1,
    0, 737, 350, 267, 137, 700, 157, 1518, 196, 757, 121, 320, 720, 539, 305, 427,
    361, 284, 394, 851, 1010, 481, 152, 1436, 130, 213, 124, 194, 0, 194, 0, 0,
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
