//! Byte counts of the literals M-Lab ArchivalRecord lines leave after matching (scaled),
//! from which the fixed literal Huffman table is built; every printable ASCII byte and
//! `\n` gets at least a count of 1, so any such byte has a code.

pub(crate) const LITERAL_COUNTS: [u16; 128] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 182, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 3020, 0, 0, 0, 0, 0, 0, 0, 0, 153, 1146, 372, 137, 1168, 1578, 743, 470, 555, 594,
    297, 479, 229, 455, 239, 920, 0, 0, 531, 0, 0, 0, 16168, 1894, 1731, 1274, 1160, 533, 388, 456,
    1243, 367, 280, 579, 1142, 240, 487, 594, 1610, 288, 157, 479, 669, 257, 482, 257, 600, 360,
    181, 0, 181, 0, 1, 0, 695, 330, 261, 129, 659, 148, 1610, 185, 712, 114, 302, 719, 508, 307,
    404, 342, 267, 370, 803, 952, 473, 144, 1398, 124, 200, 117, 182, 0, 182, 0, 0,
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
