//! Announcement cues: words by which an ordinary message that mentions an emergency says it is
//! not one — "this is not an emergency", a test or drill, a change or maintenance notice, a
//! reminder, a training, "no action needed" — in the default languages (en, de, fr, es, it, pt, nl). They only ever
//! lower a *keyword* match (no notification phrase); "this is NOT a drill" and its translations
//! cancel them. Matching is on normalised lines, by whole words (German compounds such as
//! "Räumungsübung" by word part). The lists are compiled once, with the rules ([`Cues`] in
//! `Rules`): not at the first emergency after a start.

use super::textnorm::Phrases;

/// The cue lists below, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Cues {
    announcing: Phrases,
    announcing_in_compounds: Phrases,
    saying_real: Phrases,
}

/// Say the message is not an emergency, or announce a test, drill, change or reminder.
const ANNOUNCES: &[&str] = &[
    // not an emergency
    "not an emergency",
    "not a real emergency",
    "no emergency",
    "non-emergency",
    "kein notfall",
    "keinen notfall",
    "nicht um einen notfall",
    "pas une urgence",
    "pas d'urgence",
    "no es una emergencia",
    "no se trata de una emergencia",
    "non è un'emergenza",
    "non si tratta di un'emergenza",
    "não é uma emergência",
    "não se trata de uma emergência",
    "geen noodgeval",
    "geen noodsituatie",
    // tests, drills, exercises
    "drill",
    "drills",
    "this is a test",
    "a test of",
    "alarm test",
    "test call",
    "test calls",
    "testing",
    "tested",
    "will be tested",
    "test run",
    "evacuation exercise",
    "emergency exercise",
    "fire exercise",
    "probealarm",
    "test du",
    "essai",
    "exercice",
    "simulacro",
    "simulación",
    "prueba de",
    "esercitazione",
    "prova di evacuazione",
    "simulado",
    "teste de",
    "oefening",
    "proefalarm",
    "teste do",
    "teste da",
    "teste dos",
    "teste das",
    // nothing to do
    "no action needed",
    "no action required",
    "no action is needed",
    "no action is required",
    "kein handlungsbedarf",
    "aucune action requise",
    "aucune action n'est requise",
    "no se requiere ninguna acción",
    "no es necesaria ninguna acción",
    "nessuna azione richiesta",
    "não é necessária nenhuma ação",
    "nenhuma ação é necessária",
    "geen actie vereist",
    "geen actie nodig",
    // changes and maintenance
    "change notice",
    "change request",
    "change window",
    "planned change",
    "scheduled maintenance",
    "maintenance",
    "wartung",
    "wartungsarbeiten",
    "änderung",
    "mantenimiento",
    "manutenzione",
    "manutenção",
    "onderhoud",
    // reminders, training, housekeeping
    "reminder",
    "remind",
    "erinnerung",
    "rappel",
    "recordatorio",
    "promemoria",
    "lembrete",
    "herinnering",
    "training session",
    "training course",
    "first aid training",
    "emergency training",
    "safety training",
    "schulung",
    "formation premiers secours",
    "formation sécurité",
    "formation incendie",
    "curso de formación",
    "formación en",
    "corso di formazione",
    "formazione sulla",
    "ação de formação",
    "formação em",
    "call tree",
    "contact details",
    "emergency contact",
];

/// Parts of German (and Dutch) compounds that announce a drill or test.
const ANNOUNCES_IN_COMPOUNDS: &[&str] = &["übung", "probe", "oefening"];

/// Say the opposite: a real event.
const REAL: &[&str] = &[
    "not a drill",
    "no drill",
    "not a test",
    "this is real",
    "keine übung",
    "kein test",
    "pas un exercice",
    "pas un test",
    "no es un simulacro",
    "no es una prueba",
    "no es un ejercicio",
    "non è un'esercitazione",
    "non è una prova",
    "não é um simulado",
    "não é um teste",
    "não é um exercício",
    "geen oefening",
    "geen test",
];

impl Cues {
    pub(crate) fn new() -> Cues {
        Cues {
            announcing: Phrases::new(ANNOUNCES),
            announcing_in_compounds: Phrases::new(ANNOUNCES_IN_COMPOUNDS),
            saying_real: Phrases::new(REAL),
        }
    }

    /// Whether the (normalised) lines announce something that is not an emergency, and
    /// nothing says it is real.
    pub(crate) fn announce_non_emergency<'a>(
        &self,
        lines: impl Iterator<Item = &'a str> + Clone,
    ) -> bool {
        let real = lines.clone().any(|l| self.saying_real.in_words(l));
        !real
            && lines.into_iter().any(|l| {
                self.announcing.in_words(l)
                    || l.split(|c: char| !c.is_alphanumeric())
                        .filter(|w| w.chars().count() > 6)
                        .any(|w| self.announcing_in_compounds.in_text(w))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emergency::textnorm::normalize;

    fn announces(text: &str) -> bool {
        let norm = normalize(text);
        Cues::new().announce_non_emergency(std::iter::once(norm.as_str()))
    }

    #[test]
    fn notices_reminders_tests_and_drills_are_announcements() {
        for text in [
            "Emergency drill next Tuesday",
            "This is not an emergency, you do not need to evacuate",
            "Reminder: review the emergency call tree",
            "IT change notice: emergency calling policy update",
            "Morgen findet eine Räumungsübung statt",
            "Rappel : formation premiers secours",
            "Simulacro de evacuación de emergencia",
            "Herinnering: controleer uw noodcontact",
        ] {
            assert!(announces(text), "{text}");
        }
    }

    #[test]
    fn real_events_are_not_announcements() {
        for text in [
            "EMERGENCY - someone collapsed in the lobby. This is NOT a drill!",
            "Medical emergency at reception, call 911",
            "Fire in the test lab, evacuate now",
            "Das ist keine Übung: Brand im Lager",
            "Emergency in training room 3, someone fainted",
        ] {
            assert!(!announces(text), "{text}");
        }
    }
}
