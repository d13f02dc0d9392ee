//! Integer arithmetic on constants, folded before the parser sees the graph.
//!
//! Unsimplified exports compute small integer tensors from constants alone. PyTorch's
//! `MultiheadAttention` (torchvision's ViT) bounds the `Slice` of a `Shape` that builds its
//! reshape targets with `Reshape(Mod(c1, c2), c3)`. onnx-ir types a `Slice` of a shape only
//! when its bounds are constants, so it could not tell the length of the target and refused
//! the graph. This pass evaluates, in graph order, every node whose inputs are all small
//! integer constants and puts a `Constant` node with the result in its place, as onnxsim's
//! constant folding does for these nodes. Everything else is left as it was: float
//! arithmetic and shapes read off tensors stay with the program, which computes them at run
//! time.
//!
//! Why by hand: no maintained Rust crate evaluates ONNX nodes on protobuf constants, and the
//! handful of index operations exporters write here (elementwise arithmetic, `Reshape`,
//! `Unsqueeze`, `Squeeze`, `Concat`, `Gather`, `Slice`, `Cast`) is short to state exactly.

use std::collections::HashMap;

use onnx_ir::{AttributeProto, AttributeType, GraphProto, NodeProto, TensorProto};

/// `TensorProto.DataType` values this pass reads and writes.
const INT32: i32 = 6;
const INT64: i32 = 7;

/// The most values a folded tensor may hold: index arithmetic is a few numbers; anything
/// larger is data the program should hold, not this pass. Its axes, counted at least 1 each
/// (so that an empty tensor cannot declare huge ones), span at most as many: every product of
/// a tensor's axes, and every loop over them, stays that small.
const MAX_VALUES: usize = 4096;

/// An integer tensor: its shape, its values in row-major order and its ONNX type.
#[derive(Debug, Clone, PartialEq)]
struct Ints {
    dims: Vec<usize>,
    values: Vec<i64>,
    data_type: i32,
}

impl Ints {
    fn new(dims: Vec<usize>, values: Vec<i64>, data_type: i32) -> Option<Self> {
        let span = count(dims.iter().map(|&d| d.max(1)))?;
        (span <= MAX_VALUES && count(dims.iter().copied()) == Some(values.len())).then_some(Self {
            dims,
            values,
            data_type,
        })
    }

    fn from_tensor(tensor: &TensorProto) -> Option<Self> {
        let dims = tensor
            .dims
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<_>>>()?;
        let raw = &tensor.raw_data;
        let values: Vec<i64> = match tensor.data_type {
            INT64 if !raw.is_empty() => raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
            INT32 if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes(b.try_into().unwrap_or_default())))
                .collect(),
            INT64 => tensor.int64_data.clone(),
            INT32 => tensor.int32_data.iter().map(|&v| i64::from(v)).collect(),
            _ => return None,
        };
        Self::new(dims, values, tensor.data_type)
    }

    fn to_tensor(&self, name: &str) -> TensorProto {
        let mut tensor = TensorProto::new();
        tensor.name = name.to_string();
        tensor.dims = self.dims.iter().map(|&d| d as i64).collect();
        tensor.data_type = self.data_type;
        if self.data_type == INT32 {
            tensor.int32_data = self.values.iter().map(|&v| v as i32).collect();
        } else {
            tensor.int64_data = self.values.clone();
        }
        tensor
    }

    /// Row-major strides of `dims`.
    fn strides(dims: &[usize]) -> Vec<usize> {
        let mut strides: Vec<usize> = (dims.iter().rev())
            .scan(1, |stride, &d| {
                let this = *stride;
                *stride *= d;
                Some(this)
            })
            .collect();
        strides.reverse();
        strides
    }
}

/// The product of `dims`, if it fits a `usize`.
fn count(dims: impl IntoIterator<Item = usize>) -> Option<usize> {
    dims.into_iter().try_fold(1usize, usize::checked_mul)
}

/// The product of `dims`, if a folded tensor may have that many values.
fn small_count(dims: &[usize]) -> Option<usize> {
    count(dims.iter().copied()).filter(|&n| n <= MAX_VALUES)
}

/// Folds every node of `graph` that computes integers from integer constants alone. Returns
/// the number of nodes replaced by a `Constant`.
pub(crate) fn fold_constants(graph: &mut GraphProto, opset: i64) -> usize {
    let mut known: HashMap<String, Ints> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.clone(), Ints::from_tensor(t)?)))
        .collect();
    let mut folded = 0;
    for node in &mut graph.node {
        if node.op_type == "Constant" {
            if let (Some(name), Some(value)) = (node.output.first(), constant_value(node)) {
                known.insert(name.clone(), value);
            }
            continue;
        }
        let inputs: Option<Vec<Option<&Ints>>> = node
            .input
            .iter()
            .map(|name| match name.as_str() {
                "" => Some(None),
                name => known.get(name).map(Some),
            })
            .collect();
        let (Some(inputs), [output]) = (inputs, node.output.as_slice()) else {
            continue;
        };
        if inputs.is_empty() || !node.domain.is_empty() && node.domain != "ai.onnx" {
            continue;
        }
        let Some(value) = evaluate(node, &inputs, opset) else {
            continue;
        };
        let output = output.clone();
        *node = constant_node(&node.name, &output, &value);
        known.insert(output, value);
        folded += 1;
    }
    folded
}

/// The integer value of a `Constant` node (`value`, `value_int`, `value_ints`).
fn constant_value(node: &NodeProto) -> Option<Ints> {
    let attribute = node.attribute.first()?;
    match attribute.name.as_str() {
        "value" => Ints::from_tensor(attribute.t.as_ref()?),
        "value_int" => Ints::new(vec![], vec![attribute.i], INT64),
        "value_ints" => Ints::new(vec![attribute.ints.len()], attribute.ints.clone(), INT64),
        _ => None,
    }
}

fn constant_node(name: &str, output: &str, value: &Ints) -> NodeProto {
    let mut attribute = AttributeProto::new();
    attribute.name = "value".into();
    attribute.type_ = AttributeType::TENSOR.into();
    attribute.t = Some(value.to_tensor(output)).into();
    let mut node = NodeProto::new();
    node.name = name.to_string();
    node.op_type = "Constant".into();
    node.output = vec![output.to_string()];
    node.attribute = vec![attribute];
    node
}

/// The node's output, when it is an integer tensor this pass can compute.
fn evaluate(node: &NodeProto, inputs: &[Option<&Ints>], opset: i64) -> Option<Ints> {
    let input = |i: usize| inputs.get(i).copied().flatten();
    let x = input(0)?;
    match node.op_type.as_str() {
        "Identity" => Some(x.clone()),
        "Neg" => Ints::new(
            x.dims.clone(),
            x.values
                .iter()
                .map(|v| v.checked_neg())
                .collect::<Option<_>>()?,
            x.data_type,
        ),
        "Add" => binary(x, input(1)?, i64::checked_add),
        "Sub" => binary(x, input(1)?, i64::checked_sub),
        "Mul" => binary(x, input(1)?, i64::checked_mul),
        // ONNX integer division truncates toward zero, as Rust's does.
        "Div" => binary(x, input(1)?, i64::checked_div),
        "Mod" if int_attr(node, "fmod") == Some(1) => binary(x, input(1)?, i64::checked_rem),
        "Mod" => binary(x, input(1)?, floor_mod),
        "Cast" => cast(x, int_attr(node, "to")?),
        "Reshape" => reshape(x, &input(1)?.values),
        "Unsqueeze" => unsqueeze(x, &axes(node, inputs, opset, 13)?),
        "Squeeze" => squeeze(x, &axes(node, inputs, opset, 13)?),
        "Concat" => concat(inputs, int_attr(node, "axis")?),
        "Gather" => gather(x, input(1)?, int_attr(node, "axis").unwrap_or(0)),
        "Slice" if opset >= 10 => slice(
            x,
            &input(1)?.values,
            &input(2)?.values,
            input(3).map(|a| a.values.as_slice()),
            input(4).map(|s| s.values.as_slice()),
        ),
        _ => None,
    }
}

fn int_attr(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// The `axes` of `Unsqueeze`/`Squeeze`: an input from `since`, an attribute before.
fn axes(node: &NodeProto, inputs: &[Option<&Ints>], opset: i64, since: i64) -> Option<Vec<i64>> {
    if opset >= since {
        return Some(inputs.get(1).copied().flatten()?.values.clone());
    }
    let attribute = node.attribute.iter().find(|a| a.name == "axes")?;
    Some(attribute.ints.clone())
}

/// The remainder with the divisor's sign (ONNX `Mod` with `fmod = 0`, Python's `%`).
fn floor_mod(a: i64, b: i64) -> Option<i64> {
    let r = a.checked_rem(b)?;
    Some(if r != 0 && (r < 0) != (b < 0) {
        r + b
    } else {
        r
    })
}

/// `axis` in `0..rank` from ONNX's `-rank..rank`.
fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let rank = i64::try_from(rank).ok()?;
    let axis = if axis < 0 { axis + rank } else { axis };
    (0..rank).contains(&axis).then_some(axis as usize)
}

/// NumPy broadcasting of two shapes.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |dims: &[usize], i: usize| {
        let j = (i + dims.len()).checked_sub(rank);
        j.and_then(|j| dims.get(j).copied()).unwrap_or(1)
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

/// The element of `x` (right-aligned in `out`'s rank, size-1 axes repeated) that the element
/// at flat index `i` of a tensor of shape `out` reads.
fn broadcast_value(x: &Ints, i: usize, out: &[usize]) -> Option<i64> {
    let offset = out.len().checked_sub(x.dims.len())?;
    let strides = Ints::strides(&x.dims);
    let mut rest = i;
    let mut index = 0;
    for (axis, &size) in out.iter().enumerate().rev() {
        let coordinate = rest.checked_rem(size)?;
        rest /= size;
        if let Some(j) = axis.checked_sub(offset)
            && x.dims.get(j) != Some(&1)
        {
            index += coordinate * strides.get(j)?;
        }
    }
    x.values.get(index).copied()
}

fn binary(a: &Ints, b: &Ints, f: fn(i64, i64) -> Option<i64>) -> Option<Ints> {
    if a.data_type != b.data_type {
        return None;
    }
    let dims = broadcast(&a.dims, &b.dims)?;
    let values = (0..small_count(&dims)?)
        .map(|i| f(broadcast_value(a, i, &dims)?, broadcast_value(b, i, &dims)?))
        .collect::<Option<Vec<_>>>()?;
    Ints::new(dims, values, a.data_type)
}

fn cast(x: &Ints, to: i64) -> Option<Ints> {
    let to = i32::try_from(to).ok()?;
    match to {
        INT64 => Ints::new(x.dims.clone(), x.values.clone(), INT64),
        INT32 => {
            let fits = x.values.iter().all(|&v| i32::try_from(v).is_ok());
            fits.then(|| Ints::new(x.dims.clone(), x.values.clone(), INT32))?
        }
        _ => None,
    }
}

/// `Reshape` with ONNX's `0` (copy the input's size, `allowzero` 0) and one `-1`.
fn reshape(x: &Ints, target: &[i64]) -> Option<Ints> {
    let mut dims = Vec::with_capacity(target.len());
    let mut inferred = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            0 => dims.push(*x.dims.get(i)?),
            -1 if inferred.is_none() => {
                inferred = Some(i);
                dims.push(1);
            }
            d => dims.push(usize::try_from(d).ok()?),
        }
    }
    if let Some(i) = inferred {
        let known = count(dims.iter().copied())?;
        if known == 0 || !x.values.len().is_multiple_of(known) {
            return None;
        }
        *dims.get_mut(i)? = x.values.len() / known;
    }
    Ints::new(dims, x.values.clone(), x.data_type)
}

fn unsqueeze(x: &Ints, axes: &[i64]) -> Option<Ints> {
    let rank = x.dims.len() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| normalize_axis(a, rank))
        .collect::<Option<_>>()?;
    axes.sort_unstable();
    let mut dims = x.dims.clone();
    for axis in axes {
        (axis <= dims.len()).then(|| dims.insert(axis, 1))?;
    }
    Ints::new(dims, x.values.clone(), x.data_type)
}

fn squeeze(x: &Ints, axes: &[i64]) -> Option<Ints> {
    let axes: Vec<usize> = axes
        .iter()
        .map(|&a| normalize_axis(a, x.dims.len()))
        .collect::<Option<_>>()?;
    if axes.iter().any(|&a| x.dims.get(a) != Some(&1)) {
        return None;
    }
    let dims = x
        .dims
        .iter()
        .enumerate()
        .filter(|&(i, &d)| d != 1 || !axes.is_empty() && !axes.contains(&i))
        .map(|(_, &d)| d)
        .collect();
    Ints::new(dims, x.values.clone(), x.data_type)
}

fn concat(inputs: &[Option<&Ints>], axis: i64) -> Option<Ints> {
    let parts: Vec<&Ints> = inputs.iter().copied().collect::<Option<_>>()?;
    let first = parts.first()?;
    let axis = normalize_axis(axis, first.dims.len())?;
    let same_elsewhere = |p: &Ints| {
        p.data_type == first.data_type
            && p.dims.len() == first.dims.len()
            && (p.dims.iter().zip(&first.dims).enumerate()).all(|(i, (a, b))| i == axis || a == b)
    };
    if !parts.iter().all(|p| same_elsewhere(p)) {
        return None;
    }
    let outer: usize = first.dims.get(..axis)?.iter().product();
    let mut dims = first.dims.clone();
    *dims.get_mut(axis)? = parts
        .iter()
        .map(|p| p.dims.get(axis))
        .sum::<Option<usize>>()?;
    let mut values = Vec::with_capacity(small_count(&dims)?);
    for o in 0..outer {
        for part in &parts {
            let block = part.values.len() / outer.max(1);
            values.extend_from_slice(part.values.get(o * block..(o + 1) * block)?);
        }
    }
    Ints::new(dims, values, first.data_type)
}

fn gather(x: &Ints, indices: &Ints, axis: i64) -> Option<Ints> {
    let axis = normalize_axis(axis, x.dims.len())?;
    let (before, after) = (x.dims.get(..axis)?, x.dims.get(axis + 1..)?);
    let size = *x.dims.get(axis)?;
    let (outer, inner): (usize, usize) = (before.iter().product(), after.iter().product());
    let picks = indices
        .values
        .iter()
        .map(|&i| normalize_axis(i, size))
        .collect::<Option<Vec<_>>>()?;
    let mut values = Vec::with_capacity(small_count(&[outer, picks.len(), inner])?);
    for o in 0..outer {
        for &p in &picks {
            let start = (o * size + p) * inner;
            values.extend_from_slice(x.values.get(start..start + inner)?);
        }
    }
    let dims = [before, &indices.dims[..], after].concat();
    Ints::new(dims, values, x.data_type)
}

/// The indices that one axis of `Slice` picks from `size`: `start`/`end` clamped as the
/// operator specifies, any non-zero step.
fn picks(size: usize, start: i64, end: i64, step: i64) -> Option<Vec<usize>> {
    let size = i64::try_from(size).ok()?;
    let clamp = |v: i64, low: i64, high: i64| {
        let v = if v < 0 { v.saturating_add(size) } else { v };
        v.clamp(low, high)
    };
    let (mut i, end) = match step {
        0 => return None,
        s if s > 0 => (clamp(start, 0, size), clamp(end, 0, size)),
        _ => (clamp(start, 0, size - 1), clamp(end, -1, size - 1)),
    };
    let mut picked = Vec::new();
    while (step > 0 && i < end) || (step < 0 && i > end) {
        picked.push(usize::try_from(i).ok()?);
        let Some(next) = i.checked_add(step) else {
            break;
        };
        i = next;
    }
    Some(picked)
}

/// ONNX `Slice` (opset 10+) on the given axes (all, in order, by default) with the given
/// steps (1 by default).
fn slice(
    x: &Ints,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Option<Ints> {
    let rank = x.dims.len();
    let default_axes: Vec<i64> = (0..starts.len() as i64).collect();
    let axes = axes.unwrap_or(&default_axes);
    if starts.len() != ends.len() || axes.len() != starts.len() {
        return None;
    }
    let mut picked: Vec<Vec<usize>> = x.dims.iter().map(|&d| (0..d).collect()).collect();
    for (k, (&axis, (&start, &end))) in axes.iter().zip(starts.iter().zip(ends)).enumerate() {
        let axis = normalize_axis(axis, rank)?;
        let step = steps.map_or(Some(1), |s| s.get(k).copied())?;
        *picked.get_mut(axis)? = picks(*x.dims.get(axis)?, start, end, step)?;
    }
    let dims: Vec<usize> = picked.iter().map(Vec::len).collect();
    let strides = Ints::strides(&x.dims);
    let values = (0..small_count(&dims)?)
        .map(|flat| {
            let mut rest = flat;
            let mut index = 0;
            for ((along, &size), stride) in picked.iter().zip(&dims).zip(&strides).rev() {
                index += along.get(rest.checked_rem(size)?)? * stride;
                rest /= size;
            }
            x.values.get(index).copied()
        })
        .collect::<Option<Vec<_>>>()?;
    Ints::new(dims, values, x.data_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(dims: &[usize], values: &[i64]) -> Ints {
        Ints::new(dims.to_vec(), values.to_vec(), INT64).unwrap()
    }

    fn values(x: Option<Ints>) -> (Vec<usize>, Vec<i64>) {
        let x = x.expect("folded");
        (x.dims, x.values)
    }

    #[test]
    fn division_truncates_and_mod_takes_the_divisor_sign() {
        let a = ints(&[4], &[7, -7, 7, -7]);
        let b = ints(&[4], &[2, 2, -2, -2]);
        assert_eq!(values(binary(&a, &b, i64::checked_div)).1, [3, -3, -3, 3]);
        assert_eq!(values(binary(&a, &b, floor_mod)).1, [1, 1, -1, -1]);
        assert_eq!(values(binary(&a, &b, i64::checked_rem)).1, [1, -1, 1, -1]);
        assert!(binary(&a, &ints(&[], &[0]), i64::checked_div).is_none());
    }

    #[test]
    fn binary_ops_broadcast_like_numpy() {
        let a = ints(&[2, 1], &[10, 20]);
        let b = ints(&[3], &[1, 2, 3]);
        assert_eq!(
            values(binary(&a, &b, i64::checked_add)),
            (vec![2, 3], vec![11, 12, 13, 21, 22, 23])
        );
        assert!(binary(&ints(&[2], &[1, 2]), &b, i64::checked_add).is_none());
    }

    #[test]
    fn slice_clamps_and_steps_backwards() {
        let x = ints(&[2, 3], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(
            values(slice(&x, &[1], &[i64::MAX], Some(&[1]), None)),
            (vec![2, 2], vec![1, 2, 4, 5])
        );
        assert_eq!(
            values(slice(&x, &[-1], &[i64::MIN], Some(&[-1]), Some(&[-1]))),
            (vec![2, 3], vec![2, 1, 0, 5, 4, 3])
        );
        assert_eq!(
            values(slice(&x, &[0, -2], &[1, -1], None, None)),
            (vec![1, 1], vec![1])
        );
        assert!(slice(&x, &[0], &[1], None, Some(&[0])).is_none());
    }

    #[test]
    fn shape_ops_follow_onnx() {
        let x = ints(&[2, 3], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(values(reshape(&x, &[3, -1])).0, [3, 2]);
        assert_eq!(values(reshape(&x, &[0, 3])).0, [2, 3]);
        assert!(reshape(&x, &[4, -1]).is_none());
        assert_eq!(values(unsqueeze(&x, &[0, -1])).0, [1, 2, 3, 1]);
        let one = ints(&[1, 3, 1], &[7, 8, 9]);
        assert_eq!(values(squeeze(&one, &[])).0, [3]);
        assert_eq!(values(squeeze(&one, &[-1])).0, [1, 3]);
        assert!(squeeze(&one, &[1]).is_none());
        assert_eq!(
            values(gather(&x, &ints(&[2], &[-1, 0]), 1)),
            (vec![2, 2], vec![2, 0, 5, 3])
        );
        assert_eq!(
            values(gather(&x, &ints(&[], &[1]), 0)),
            (vec![3], vec![3, 4, 5])
        );
        let y = ints(&[2, 1], &[6, 7]);
        assert_eq!(
            values(concat(&[Some(&x), Some(&y)], -1)),
            (vec![2, 4], vec![0, 1, 2, 6, 3, 4, 5, 7])
        );
        assert!(concat(&[Some(&x), Some(&ints(&[1, 3], &[0; 3]))], 1).is_none());
    }

    /// Hostile sizes are left unfolded, never overflow or loop: huge axes on an empty tensor,
    /// a broadcast or gather past the limit, a reshape target whose product overflows, a
    /// slice step near `i64::MAX`.
    #[test]
    fn hostile_sizes_are_refused_not_folded() {
        assert!(Ints::new(vec![1 << 40, 0], vec![], INT64).is_none());
        assert!(Ints::new(vec![usize::MAX, 2, 0], vec![], INT64).is_none());
        let long = Ints::new(vec![MAX_VALUES, 1], vec![1; MAX_VALUES], INT64).unwrap();
        let wide = Ints::new(vec![1, MAX_VALUES], vec![1; MAX_VALUES], INT64).unwrap();
        assert!(binary(&long, &wide, i64::checked_add).is_none());
        let x = ints(&[2, 3], &[0, 1, 2, 3, 4, 5]);
        assert!(reshape(&x, &[i64::MAX, i64::MAX, -1]).is_none());
        let square = Ints::new(vec![64, 64], vec![0; MAX_VALUES], INT64).unwrap();
        assert!(gather(&square, &wide, 0).is_none());
        assert_eq!(
            values(slice(&x, &[1], &[3], Some(&[1]), Some(&[i64::MAX]))),
            (vec![2, 1], vec![1, 4])
        );
    }

    /// The chain PyTorch's attention writes: `Reshape(Mod(c1, c2), c3)` feeding a `Slice`
    /// end; the folded graph holds the result as a `Constant` and keeps what reads tensors.
    #[test]
    fn a_graph_folds_its_constant_chain_and_keeps_the_rest() {
        let constant =
            |name: &str, dims: &[usize], v: &[i64]| constant_node(name, name, &ints(dims, v));
        let op = |op: &str, inputs: &[&str], output: &str| {
            let mut node = NodeProto::new();
            node.op_type = op.into();
            node.name = output.into();
            node.input = inputs.iter().map(|s| s.to_string()).collect();
            node.output = vec![output.into()];
            node
        };
        let mut graph = GraphProto::new();
        graph.node = vec![
            constant("c1", &[], &[-1]),
            constant("c2", &[], &[3]),
            constant("c3", &[1], &[1]),
            op("Mod", &["c1", "c2"], "m"),
            op("Reshape", &["m", "c3"], "end"),
            op("Shape", &["x"], "shape"),
            op("Slice", &["shape", "c3", "end"], "s"),
        ];
        assert_eq!(fold_constants(&mut graph, 17), 2);
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops[3..], ["Constant", "Constant", "Shape", "Slice"]);
        let end = constant_value(&graph.node[4]).unwrap();
        assert_eq!((end.dims, end.values), (vec![1], vec![2]));
    }
}
