//! Copies that reshape a map on flex buffers: planes padded by a constant, and a per-channel
//! gradient spread over its planes.

use burn::tensor::Tensor;

use super::buffer::{Slots, buffer, each_plane, float, written};

pub(crate) fn pad_planes(
    x: &Tensor<4>,
    [(top, bottom), (left, right)]: [(usize, usize); 2],
    value: f32,
) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    let (hp, wp) = (h + top + bottom, w + left + right);
    let plane = hp * wp;
    if plane == 0 || h * w == 0 {
        return None;
    }
    let px = buffer(x)?;
    let xs: &[f32] = px.storage();
    let fill = |p: usize, out: &mut Slots| {
        let source = &xs[p * h * w..(p + 1) * h * w];
        for (r, row) in out.chunks_exact_mut(wp).enumerate() {
            match r.checked_sub(top).filter(|&r| r < h) {
                Some(r) => {
                    let (before, rest) = row.split_at_mut(left);
                    let (inside, after) = rest.split_at_mut(w);
                    for o in before.iter_mut().chain(after) {
                        o.write(value);
                    }
                    for (o, &v) in inside.iter_mut().zip(&source[r * w..(r + 1) * w]) {
                        o.write(v);
                    }
                }
                None => row.iter_mut().for_each(|o| {
                    o.write(value);
                }),
            }
        }
    };
    // SAFETY: every row of every padded plane is written: padding, then the input row.
    let out = unsafe { written(n * c * plane, |out| each_plane(out, plane, fill)) };
    Some(float(out, [n, c, hp, wp]))
}

pub(crate) fn spread_channels(dy: &Tensor<4>, dims: [usize; 4]) -> Option<Tensor<4>> {
    let [n, c, h, w] = dims;
    if dy.dims() != [n, c, 1, 1] {
        return None;
    }
    let p = buffer(dy)?;
    let values: &[f32] = p.storage();
    let pixels = h * w;
    if pixels == 0 {
        return None;
    }
    // SAFETY: the `n · c` planes of `pixels` values each take one value of `dy` apiece.
    let out = unsafe {
        written(n * c * pixels, |out| {
            each_plane(out, pixels, |i, plane| {
                plane.iter_mut().for_each(|o| {
                    o.write(values[i] / pixels as f32);
                });
            })
        })
    };
    Some(float(out, dims))
}
