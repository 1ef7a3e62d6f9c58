use npsim_models::{LinearDims, TheorySettings};
fn main() {
    let d = LinearDims {
        lx: 100,
        lh: 1000,
        ly: 10,
    };
    for rel in [0.5, 1.0, 1.5, 2.0] {
        let s = TheorySettings {
            dims: d,
            init_scale: 1.0,
            learning_rate: rel * d.critical_learning_rate(1.0),
            teacher_noise_var: 0.0,
        };
        let two = s.two_variable(100_000, 10_000);
        let four = s.four_variable(100_000, 10_000);
        println!("rel {rel}");
        for (a, b) in two.iter().zip(four.iter()) {
            println!(
                "  {:>7} 2v a={:.4} eps={:.4e}   4v eps={:.4e} alpha={:.3} beta={:.3}",
                a.step, a.a, a.epsilon, b.epsilon, b.alpha, b.beta
            );
        }
    }
}
