//! Two-operand `Einsum` as a batched matrix product: both operands permuted to
//! `[batch…, free…, contracted…]` / `[batch…, contracted…, free…]`, folded to rank 3, multiplied,
//! unfolded and permuted to the output's order.

use feedbacknet_core::{DynTensor, Result};

use super::{indexing, shape_err};

/// How a two-operand equation without repeated or summed-out labels runs (see [`plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EinsumPlan {
    /// The axes of A in the order batch, free, contracted.
    pub(crate) perm_a: Vec<usize>,
    /// The axes of B in the order batch, contracted, free.
    pub(crate) perm_b: Vec<usize>,
    /// How many labels are batch (in A, B and the output), free in A, free in B, contracted.
    pub(crate) batch: usize,
    pub(crate) free_a: usize,
    pub(crate) free_b: usize,
    pub(crate) contracted: usize,
    /// Output axis `i` is axis `out_perm[i]` of `[batch…, free A…, free B…]`.
    pub(crate) out_perm: Vec<usize>,
}

/// The plan of `equation` (spaces allowed, letters of either case; the implicit form takes the
/// labels seen once, in alphabetical order) for two operands; `Err` with the reason otherwise.
pub(crate) fn plan(equation: &str) -> std::result::Result<EinsumPlan, String> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    if eq.contains('.') {
        return Err("an ellipsis (`...`)".into());
    }
    let (lhs, out) = match eq.split_once("->") {
        Some((l, o)) => (l.to_string(), Some(o.to_string())),
        None => (eq.clone(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    let &[term_a, term_b] = terms.as_slice() else {
        let n = terms.len();
        let plural = if n == 1 { "" } else { "s" };
        return Err(format!("{n} operand{plural} (two run)"));
    };
    let labels = |t: &str| -> std::result::Result<Vec<char>, String> {
        let v: Vec<char> = t.chars().collect();
        if let Some(c) = v.iter().find(|c| !c.is_ascii_alphabetic()) {
            return Err(format!("the character `{c}` in a term"));
        }
        for (i, c) in v.iter().enumerate() {
            if v.iter().take(i).any(|seen| seen == c) {
                return Err(format!(
                    "the label `{c}` repeated within one term (a diagonal)"
                ));
            }
        }
        Ok(v)
    };
    let (a, b) = (labels(term_a)?, labels(term_b)?);
    let out = match out {
        Some(o) => labels(&o)?,
        None => {
            let mut once: Vec<char> = a
                .iter()
                .chain(&b)
                .copied()
                .filter(|c| !(a.contains(c) && b.contains(c)))
                .collect();
            once.sort_unstable();
            once
        }
    };
    if let Some(c) = out.iter().find(|c| !a.contains(c) && !b.contains(c)) {
        return Err(format!("the output label `{c}` in no operand"));
    }
    if let Some(c) = a.iter().chain(&b).find(|c| {
        let shared = a.contains(c) && b.contains(c);
        !out.contains(c) && !shared
    }) {
        return Err(format!("the label `{c}` summed out of one operand alone"));
    }
    let batch: Vec<char> = out
        .iter()
        .copied()
        .filter(|c| a.contains(c) && b.contains(c))
        .collect();
    let free_a: Vec<char> = a.iter().copied().filter(|c| !b.contains(c)).collect();
    let free_b: Vec<char> = b.iter().copied().filter(|c| !a.contains(c)).collect();
    let contracted: Vec<char> = a
        .iter()
        .copied()
        .filter(|c| b.contains(c) && !out.contains(c))
        .collect();
    // Every label looked up was drawn from the term it is looked up in; the error is a guard.
    let pos = |term: &[char], c: &char| {
        term.iter()
            .position(|x| x == c)
            .ok_or_else(|| format!("the label `{c}` missing from its term"))
    };
    let perm_a = batch
        .iter()
        .chain(&free_a)
        .chain(&contracted)
        .map(|c| pos(&a, c))
        .collect::<std::result::Result<_, _>>()?;
    let perm_b = batch
        .iter()
        .chain(&contracted)
        .chain(&free_b)
        .map(|c| pos(&b, c))
        .collect::<std::result::Result<_, _>>()?;
    let product: Vec<char> = batch
        .iter()
        .chain(&free_a)
        .chain(&free_b)
        .copied()
        .collect();
    let out_perm = out
        .iter()
        .map(|c| pos(&product, c))
        .collect::<std::result::Result<_, _>>()?;
    Ok(EinsumPlan {
        perm_a,
        perm_b,
        batch: batch.len(),
        free_a: free_a.len(),
        free_b: free_b.len(),
        contracted: contracted.len(),
        out_perm,
    })
}

/// Runs the plan on its two operands (batch labels of equal sizes in both).
pub(crate) fn einsum(plan: &EinsumPlan, a: DynTensor, b: DynTensor) -> Result<DynTensor> {
    if a.rank() != plan.perm_a.len() || b.rank() != plan.perm_b.len() {
        return Err(shape_err(
            &format!(
                "Einsum operands of ranks {} and {}",
                plan.perm_a.len(),
                plan.perm_b.len()
            ),
            a.dims(),
        ));
    }
    let a = indexing::transpose(a, &plan.perm_a)?;
    let b = indexing::transpose(b, &plan.perm_b)?;
    let (ad, bd) = (a.dims(), b.dims());
    let parts = split3(&ad, plan.batch, plan.free_a).zip(split3(&bd, plan.batch, plan.contracted));
    // A: [batch, free, contracted]; B: [batch, contracted, free], the shared parts equal.
    let agree = |((a_batch, _, a_contracted), (b_batch, b_contracted, b_free)): &(Parts, Parts)| {
        b_free.len() == plan.free_b && a_batch == b_batch && a_contracted == b_contracted
    };
    let Some(((a_batch, a_free, a_contracted), (_, _, b_free))) = parts.filter(agree) else {
        return Err(shape_err(
            &format!("Einsum batch and contracted sizes to agree with {bd:?}"),
            ad,
        ));
    };
    let prod = |d: &[usize]| d.iter().product::<usize>();
    let (batch, rows, inner, cols) = (
        prod(a_batch),
        prod(a_free),
        prod(a_contracted),
        prod(b_free),
    );
    let (DynTensor::R3(a3), DynTensor::R3(b3)) = (
        a.reshape(&[batch, rows, inner])?,
        b.reshape(&[batch, inner, cols])?,
    ) else {
        return Err(shape_err("rank-3 folds", vec![batch, rows, inner]));
    };
    let dims: Vec<usize> = [a_batch, a_free, b_free].concat();
    let y = DynTensor::R3(a3.matmul(b3));
    let y = if dims.is_empty() {
        y.reshape(&[1])?
    } else {
        y.reshape(&dims)?
    };
    if dims.len() <= 1 {
        return Ok(y);
    }
    indexing::transpose(y, &plan.out_perm)
}

/// A shape cut in three.
type Parts<'a> = (&'a [usize], &'a [usize], &'a [usize]);

/// `dims` cut into its first `first`, its next `second` and the rest; `None` when too short.
fn split3(dims: &[usize], first: usize, second: usize) -> Option<Parts<'_>> {
    let (head, rest) = dims.split_at_checked(first)?;
    let (middle, tail) = rest.split_at_checked(second)?;
    Some((head, middle, tail))
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use feedbacknet_core::DynTensor;

    use super::{einsum, plan};
    use crate::ops::Op;

    /// A direct loop over every assignment of the labels.
    fn reference(eq: &str, a: &[f32], ad: &[usize], b: &[f32], bd: &[usize]) -> Vec<f32> {
        let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, out) = eq.split_once("->").unwrap();
        let (ta, tb) = lhs.split_once(',').unwrap();
        let (ta, tb, out): (Vec<char>, Vec<char>, Vec<char>) = (
            ta.chars().collect(),
            tb.chars().collect(),
            out.chars().collect(),
        );
        let mut labels: Vec<char> = ta.iter().chain(&tb).copied().collect();
        labels.sort_unstable();
        labels.dedup();
        let size = |c: char| {
            ta.iter()
                .position(|&x| x == c)
                .map(|i| ad[i])
                .unwrap_or_else(|| bd[tb.iter().position(|&x| x == c).unwrap()])
        };
        let sizes: Vec<usize> = labels.iter().map(|&c| size(c)).collect();
        let od: Vec<usize> = out.iter().map(|&c| size(c)).collect();
        let mut y = vec![0.0f32; od.iter().product::<usize>().max(1)];
        let flat = |term: &[char], dims: &[usize], idx: &[usize]| {
            term.iter().zip(dims).fold(0, |acc, (c, d)| {
                acc * d + idx[labels.iter().position(|x| x == c).unwrap()]
            })
        };
        let total: usize = sizes.iter().product();
        for mut n in 0..total {
            let mut idx = vec![0; labels.len()];
            for i in (0..labels.len()).rev() {
                idx[i] = n % sizes[i];
                n /= sizes[i];
            }
            y[flat(&out, &od, &idx)] += a[flat(&ta, ad, &idx)] * b[flat(&tb, bd, &idx)];
        }
        y
    }

    fn check(eq: &str, ad: &[usize], bd: &[usize]) {
        let device = Device::flex();
        let values = |n: usize, s: f32| (0..n).map(|i| (i as f32 * s).sin()).collect::<Vec<_>>();
        let a = values(ad.iter().product(), 0.37);
        let b = values(bd.iter().product(), 0.91);
        let p = plan(eq).unwrap();
        let y = einsum(
            &p,
            DynTensor::from_vec(a.clone(), ad, &device).unwrap(),
            DynTensor::from_vec(b.clone(), bd, &device).unwrap(),
        )
        .unwrap()
        .to_vec()
        .unwrap();
        let r = reference(eq, &a, ad, &b, bd);
        assert_eq!(y.len(), r.len(), "{eq}");
        for (u, v) in y.iter().zip(&r) {
            assert!((u - v).abs() < 1e-4, "{eq}: {u} vs {v}");
        }
    }

    #[test]
    fn maxvit_equations_match_a_loop() {
        check(
            "B G H I D, B G H J D -> B G H I J",
            &[2, 3, 2, 4, 5],
            &[2, 3, 2, 3, 5],
        );
        check(
            "B G H I J, B G H J D -> B G H I D",
            &[2, 3, 2, 4, 3],
            &[2, 3, 2, 3, 5],
        );
    }

    #[test]
    fn other_two_operand_forms_match_a_loop() {
        check("ij,jk->ik", &[3, 4], &[4, 5]);
        check("ij,jk->ki", &[3, 4], &[4, 5]);
        check("bij,bkj->bki", &[2, 3, 4], &[2, 5, 4]);
        check("i,j->ij", &[3], &[4]);
        check("ij,ij->i", &[3, 4], &[3, 4]);
        check("abc,cd->dba", &[2, 3, 4], &[4, 2]);
    }

    /// The reverse pass (autodiff of the step) against the products that define it:
    /// `dA = dY·B` and `dB = dYᵀ·A` over the batch, as loops.
    #[test]
    fn reverse_pass_equals_the_transposed_products() {
        let device = Device::flex();
        let (ad, bd, yd) = ([2, 1, 2, 3, 4], [2, 1, 2, 5, 4], [2, 1, 2, 3, 5]);
        let values = |n: usize, s: f32| (0..n).map(|i| (i as f32 * s).cos()).collect::<Vec<_>>();
        let a = values(ad.iter().product(), 0.3);
        let b = values(bd.iter().product(), 0.7);
        let dy = values(yd.iter().product(), 1.1);
        let op = Op::Einsum(plan("B G H I D, B G H J D -> B G H I J").unwrap());
        let tensor = |v: &[f32], d: &[usize]| DynTensor::from_vec(v.to_vec(), d, &device).unwrap();
        let grads = crate::reverse::autodiff_vjp(
            &op,
            vec![tensor(&a, &ad), tensor(&b, &bd)],
            tensor(&dy, &yd),
            &[true, true],
        )
        .unwrap();
        let da = reference("BGHIJ,BGHJD->BGHID", &dy, &yd, &b, &bd);
        let db = reference("BGHIJ,BGHID->BGHJD", &dy, &yd, &a, &ad);
        for (got, want) in grads.into_iter().zip([da, db]) {
            let got = got.unwrap().to_vec().unwrap();
            assert_eq!(got.len(), want.len());
            for (u, v) in got.iter().zip(&want) {
                assert!((u - v).abs() < 1e-4, "{u} vs {v}");
            }
        }
    }

    #[test]
    fn refused_forms_say_why() {
        assert!(plan("ij->ji").unwrap_err().contains("1 operand (two run)"));
        assert!(plan("ii,ij->j").unwrap_err().contains("repeated"));
        assert!(plan("...ij,...jk->...ik").unwrap_err().contains("ellipsis"));
        assert!(plan("ij,jk->k").unwrap_err().contains("summed out"));
        assert!(plan("ij,jk,kl->il").unwrap_err().contains("3 operands"));
    }
}
