//! Redis' `pqsort`: NetBSD's quicksort (Bentley & McIlroy) changed to
//! sort only what a range of positions needs. GEOSEARCH with COUNT and
//! SORT with BY and LIMIT use it, and it is not stable, so the order of
//! equal elements (points at the same position, equal ALPHA weights) is
//! whatever this exact algorithm leaves; it is reproduced step for step
//! so that those orders are Redis'.

use std::cmp::Ordering;

/// Sorts `v` so that positions `lo..=hi` hold what a full sort would put
/// there (the rest is partly sorted), leaving equal elements where
/// Redis' `pqsort` leaves them.
pub(crate) fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lo: usize, hi: usize) {
    let n = v.len();
    partial(v, 0, n, cmp, lo, hi);
}

fn c<T>(v: &[T], cmp: &impl Fn(&T, &T) -> Ordering, i: usize, j: usize) -> Ordering {
    match (v.get(i), v.get(j)) {
        (Some(a), Some(b)) => cmp(a, b),
        _ => Ordering::Equal,
    }
}

fn med3<T>(v: &[T], cmp: &impl Fn(&T, &T) -> Ordering, a: usize, b: usize, x: usize) -> usize {
    if c(v, cmp, a, b) == Ordering::Less {
        if c(v, cmp, b, x) == Ordering::Less {
            b
        } else if c(v, cmp, a, x) == Ordering::Less {
            x
        } else {
            a
        }
    } else if c(v, cmp, b, x) == Ordering::Greater {
        b
    } else if c(v, cmp, a, x) == Ordering::Less {
        a
    } else {
        x
    }
}

fn insertion<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, a: usize, n: usize) {
    for pm in a + 1..a + n {
        let mut pl = pm;
        while pl > a && c(v, cmp, pl - 1, pl) == Ordering::Greater {
            v.swap(pl, pl - 1);
            pl -= 1;
        }
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// Whether the elements `s..s + k` can hold none of `lo..=hi`.
fn outside(s: usize, k: usize, lo: usize, hi: usize) -> bool {
    hi < s || lo >= s + k
}

fn partial<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
    lo: usize,
    hi: usize,
) {
    loop {
        if n < 7 {
            insertion(v, cmp, a, n);
            return;
        }
        let mut swapped = false;
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, cmp, pl, pl + d, pl + 2 * d);
                pm = med3(v, cmp, pm - d, pm, pm + d);
                pn = med3(v, cmp, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, cmp, pl, pm, pn);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let r = c(v, cmp, pb, a);
                if r == Ordering::Greater {
                    break;
                }
                if r == Ordering::Equal {
                    swapped = true;
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = c(v, cmp, pc, a);
                if r == Ordering::Less {
                    break;
                }
                if r == Ordering::Equal {
                    swapped = true;
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            swapped = true;
            pb += 1;
            pc -= 1;
        }
        if !swapped {
            insertion(v, cmp, a, n);
            return;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let k = pb - pa;
        if k > 1 && !outside(a, k, lo, hi) {
            partial(v, a, k, cmp, lo, hi);
        }
        let k = pd - pc;
        if k > 1 {
            a = pn - k;
            n = k;
            if !outside(a, k, lo, hi) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The range asked for is what a full sort puts there.
    #[test]
    fn range_is_sorted() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let n = rng.random_range(0..300);
            let v: Vec<u32> = (0..n).map(|_| rng.random_range(0..50)).collect();
            let mut full = v.clone();
            full.sort_unstable();
            if n == 0 {
                continue;
            }
            let lo = rng.random_range(0..n);
            let hi = rng.random_range(lo..n);
            let mut p = v.clone();
            pqsort(&mut p, &|a: &u32, b: &u32| a.cmp(b), lo, hi);
            assert_eq!(p.get(lo..=hi), full.get(lo..=hi), "n={n} lo={lo} hi={hi}");
        }
    }

    /// Equal keys end up in pqsort's order, not input order: a case
    /// worked through by hand from the C code (n < 7: insertion sort,
    /// which is stable).
    #[test]
    fn small_inputs_are_insertion_sorted() {
        let mut v = vec![(1, 'a'), (0, 'b'), (1, 'c'), (0, 'd')];
        pqsort(
            &mut v,
            &|a: &(i32, char), b: &(i32, char)| a.0.cmp(&b.0),
            0,
            1,
        );
        assert_eq!(v, vec![(0, 'b'), (0, 'd'), (1, 'a'), (1, 'c')]);
    }
}
