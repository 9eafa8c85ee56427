//! The `[outputs]` section (preset, overrides, validation) and opening GPIO lines that are
//! not there.

use std::path::PathBuf;

use beacon::outputs::config::{BoardPreset, LineId, LineSpec, OutputsConfig, Wiring};

fn parse(toml: &str) -> Result<OutputsConfig, String> {
    #[derive(serde::Deserialize)]
    struct File {
        outputs: OutputsConfig,
    }
    toml::from_str::<File>(toml)
        .map(|f| f.outputs)
        .map_err(|e| e.to_string())
}

fn named(name: &str, active_low: bool) -> Option<LineSpec> {
    Some(LineSpec {
        id: LineId::Name(name.into()),
        active_low,
    })
}

fn at(chip: &str, offset: u32, active_low: bool) -> Option<LineSpec> {
    Some(LineSpec {
        id: LineId::Offset {
            chip: PathBuf::from(chip),
            offset,
        },
        active_low,
    })
}

fn errors(toml: &str) -> String {
    parse(toml).unwrap().validate().unwrap_err().to_string()
}

#[test]
fn no_section_means_nothing_is_wired() {
    assert_eq!(
        OutputsConfig::default().validate().unwrap(),
        Wiring::default()
    );
    assert_eq!(parse("[outputs]").unwrap().board, BoardPreset::None);
}

#[test]
fn the_waveshare_preset_wires_gpio26_20_21_active_low() {
    let config = parse(
        r#"
        [outputs]
        board = "waveshare-rpi-relay"
        [outputs.button]
        offset = 17
        "#,
    )
    .unwrap();
    let wiring = config.validate().unwrap();
    assert_eq!(wiring.strobe, named("GPIO26", true));
    assert_eq!(wiring.siren, named("GPIO20", true));
    assert_eq!(wiring.trouble, named("GPIO21", true));
    assert_eq!(wiring.button, at("/dev/gpiochip0", 17, true));
    let button = config.button.unwrap();
    assert_eq!((button.debounce_ms, button.long_press_ms), (30, 3000));
    assert!(button.pull_up);
}

#[test]
fn a_configured_line_replaces_the_preset_line() {
    let wiring = parse(
        r#"
        [outputs]
        board = "waveshare-rpi-relay"
        [outputs.siren]
        chip = "/dev/gpiochip1"
        offset = 5
        "#,
    )
    .unwrap()
    .validate()
    .unwrap();
    assert_eq!(wiring.strobe, named("GPIO26", true));
    assert_eq!(wiring.siren, at("/dev/gpiochip1", 5, false));
}

#[test]
fn unknown_keys_and_boards_are_refused() {
    let e = parse("[outputs]\nstrobe_pin = 26").unwrap_err();
    assert!(e.contains("strobe_pin"), "{e}");
    let e = parse("[outputs.strobe]\noffset = 26\nactive_lo = true").unwrap_err();
    assert!(e.contains("active_lo"), "{e}");
    let e = parse("[outputs]\nboard = \"pifacerelay\"").unwrap_err();
    assert!(e.contains("waveshare-rpi-relay"), "{e}");
}

#[test]
fn every_line_problem_is_reported_at_once_with_its_key() {
    let e = errors(
        r#"
        [outputs.strobe]
        offset = 26
        name = "GPIO26"
        [outputs.siren]
        active_low = true
        [outputs.trouble]
        chip = "gpiochip0"
        offset = 21
        [outputs.button]
        chip = "/dev/gpiochip0"
        name = "GPIO17"
        debounce_ms = 0
        long_press_ms = 100
        "#,
    );
    for expected in [
        "outputs.strobe: give either `offset` or `name`, not both",
        "outputs.siren: needs `offset` (with `chip`) or `name`",
        "outputs.trouble.chip = \"gpiochip0\" is not a device path",
        "outputs.button: `chip` is only used with `offset`",
        "outputs.button.debounce_ms = 0 is outside 1..=500 ms",
        "outputs.button.long_press_ms = 100 is outside 1000..=30000 ms",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in: {e}");
    }
}

#[test]
fn two_outputs_on_one_line_are_refused() {
    let e = errors(
        r#"
        [outputs]
        board = "waveshare-rpi-relay"
        [outputs.button]
        name = "GPIO26"
        "#,
    );
    assert!(
        e.contains("outputs.strobe and outputs.button are both on line \"GPIO26\""),
        "{e}"
    );
    let e = errors(
        "[outputs.strobe]\noffset = 4\n[outputs.siren]\noffset = 4\nchip = \"/dev/gpiochip0\"",
    );
    assert!(e.contains("/dev/gpiochip0 line 4"), "{e}");
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use beacon::alarm::Event;
    use beacon::hw::linux::{open_button, open_output, open_relays};

    #[test]
    fn a_missing_chip_or_line_is_an_error_to_raise_as_trouble_not_a_panic() {
        let wiring = Wiring {
            strobe: at("/dev/gpiochip-not-here", 26, true),
            siren: named("BEACON_NO_SUCH_LINE", true),
            trouble: None,
            button: named("BEACON_NO_SUCH_BUTTON", true),
        };
        let (mut relays, errors) = open_relays(&wiring);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(relays.energised(), [None, None, None]);
        relays.safe().unwrap(); // nothing opened, nothing to drive: still fine
        let e = &errors[0];
        assert_eq!(e.what, "strobe");
        assert!(
            e.to_string().contains("/dev/gpiochip-not-here line 26"),
            "{e}"
        );
        match e.trouble() {
            Event::TroubleRaised { component, detail } => {
                assert_eq!(component, "gpio strobe");
                assert!(detail.contains("cannot open"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert!(errors[1].to_string().contains("no GPIO line has this name"));
        let button = beacon::outputs::config::ButtonConfig::default();
        let e = open_button(&wiring, &button).unwrap_err();
        assert_eq!(e.what, "button");
        assert!(open_output("strobe", wiring.strobe.as_ref().unwrap()).is_err());
    }
}
