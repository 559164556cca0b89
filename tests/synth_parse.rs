//! The command-line grammar of synth specs.

use mpscope::synth::{
    Bulk, CollapseSpec, HeavyTailSpec, Span, SpikeSpec, SynthDtype, SynthFamily, SynthProj, Target,
    parse_list,
};

#[test]
fn spike_specs_parse() {
    let s: SpikeSpec = "q:3".parse().unwrap();
    assert_eq!(
        s,
        SpikeSpec {
            target: Target::all(SynthProj::Q),
            count: 3,
            multiple: 3.0,
            multiple_to: None
        }
    );
    let s: SpikeSpec = "L0.q:5x4".parse().unwrap();
    assert_eq!(
        (s.target, s.count, s.multiple),
        (Target::layer(0, SynthProj::Q), 5, 4.0)
    );
    let s: SpikeSpec = "L2.k.h3:1".parse().unwrap();
    assert_eq!(s.target, Target::head(2, SynthProj::K, 3));
    let s: SpikeSpec = "L0-3.o.h1-2:2x6-2.5".parse().unwrap();
    assert_eq!(s.target.layers, Some(Span { first: 0, last: 3 }));
    assert_eq!(s.target.heads, Some(Span { first: 1, last: 2 }));
    assert_eq!(s.multiples(), vec![6.0, 2.5]);
    let round: SpikeSpec = s.to_string().parse().unwrap();
    assert_eq!(round, s);
    let list: Vec<SpikeSpec> = parse_list("q:3, L0.k:2x5").unwrap();
    assert_eq!(list.len(), 2);
}

#[test]
fn bad_spike_specs_say_what_is_wrong() {
    for (input, needle) in [
        ("", "empty"),
        ("x:3", "`x` is not a projection"),
        ("L0.q:abc", "count `abc`"),
        ("L0.q:0", "at least 1"),
        ("L0.q:3x-1", "multiple"),
        ("L0.q:3xfoo", "multiple `foo`"),
        ("L3-1.q:1", "runs backwards"),
        ("Lx.q:1", "`Lx` is not a projection"),
        ("q.3", "not a head"),
        ("up.h2:1", "up has no heads"),
        ("L0.q.h1.z:1", "unexpected `z`"),
    ] {
        let e = input.parse::<SpikeSpec>().unwrap_err().to_string();
        assert!(e.contains(needle), "`{input}` → {e}");
        assert!(e.contains("spike spec") && e.contains("grammar"), "{e}");
    }
    assert!(parse_list::<SpikeSpec>("q:3,,k:1").is_err());
}

#[test]
fn heavy_tail_and_collapse_specs_parse() {
    let h: HeavyTailSpec = "q".parse().unwrap();
    assert_eq!(h.bulk, Bulk::StudentT { dof: 3 });
    let h: HeavyTailSpec = "L0-3.q".parse().unwrap();
    assert_eq!(h.target.layers, Some(Span { first: 0, last: 3 }));
    let h: HeavyTailSpec = "L1.k.h0:t5".parse().unwrap();
    assert_eq!(
        (h.target, h.bulk),
        (Target::head(1, SynthProj::K, 0), Bulk::StudentT { dof: 5 })
    );
    assert_eq!(
        "v:gauss".parse::<HeavyTailSpec>().unwrap().bulk,
        Bulk::Gaussian
    );
    assert_eq!(parse_list::<HeavyTailSpec>("q,k").unwrap().len(), 2);
    let e = "q:t2".parse::<HeavyTailSpec>().unwrap_err().to_string();
    assert!(e.contains("at least 3 degrees"), "{e}");
    let e = "q:cauchy".parse::<HeavyTailSpec>().unwrap_err().to_string();
    assert!(e.contains("heavy-tail spec") && e.contains("t<dof>"), "{e}");

    let c: CollapseSpec = "L0.q.h3".parse().unwrap();
    assert_eq!(
        (c.target, c.rank, c.eps),
        (Target::head(0, SynthProj::Q, 3), None, 0.05)
    );
    let c: CollapseSpec = "L1.k.h0:2@0.02".parse().unwrap();
    assert_eq!((c.rank, c.eps), (Some(2), 0.02));
    assert_eq!(c.to_string().parse::<CollapseSpec>().unwrap(), c);
    assert!(
        "L0.q.h3:0"
            .parse::<CollapseSpec>()
            .unwrap_err()
            .to_string()
            .contains("rank")
    );
    assert!(
        "L0.q.h3@2"
            .parse::<CollapseSpec>()
            .unwrap_err()
            .to_string()
            .contains("(0, 1)")
    );
}

#[test]
fn family_and_dtype_parse() {
    assert_eq!(
        "gpt-neox".parse::<SynthFamily>().unwrap(),
        SynthFamily::Neox
    );
    assert_eq!("BF16".parse::<SynthDtype>().unwrap(), SynthDtype::Bf16);
    let e = "falcon".parse::<SynthFamily>().unwrap_err().to_string();
    assert!(
        e.contains("falcon") && e.contains("llama, bert, gpt2, phi3, neox"),
        "{e}"
    );
    assert!(
        "int8"
            .parse::<SynthDtype>()
            .unwrap_err()
            .to_string()
            .contains("bf16, f16, f32")
    );
}
