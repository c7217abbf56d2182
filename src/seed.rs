//! Realistic made-up contacts in bulk, for benchmarks and demos: names,
//! emails, phones, places and dates as a live project accumulates them.

use chrono::{DateTime, Duration, Utc};
use entity::contact;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{DatabaseConnection, EntityTrait, Set, TransactionTrait};
use serde_json::json;
use uuid::{NoContext, Timestamp, Uuid};

use crate::error::AppResult;

/// Rows per INSERT statement: 21 columns each stays under the bind limits
/// of both engines (SQLite 32,766, PostgreSQL 65,535).
const ROWS_PER_STATEMENT: usize = 1_000;
/// Statements per transaction: large enough to amortise the commit.
const STATEMENTS_PER_TRANSACTION: usize = 10;
/// How far back the made-up contacts go.
const HISTORY_DAYS: i64 = 3 * 365;

struct Country {
    code: &'static str,
    name: &'static str,
    /// Out of 100.
    weight: u32,
    time_zone: &'static str,
    first_names: &'static [&'static str],
    last_names: &'static [&'static str],
    states: &'static [(&'static str, &'static str, &'static str)],
    domains: &'static [&'static str],
    /// E.164 prefix of mobile numbers and how many digits follow it.
    phone_prefix: &'static str,
    phone_digits: usize,
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        name: "United States",
        weight: 30,
        time_zone: "America/New_York",
        first_names: &[
            "James",
            "Mary",
            "John",
            "Patricia",
            "Robert",
            "Jennifer",
            "Michael",
            "Linda",
            "William",
            "Elizabeth",
            "David",
            "Susan",
            "Emily",
            "Daniel",
            "Ashley",
            "Ethan",
        ],
        last_names: &[
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
            "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "White", "Harris",
        ],
        states: &[
            ("California", "CA", "Los Angeles"),
            ("New York", "NY", "New York"),
            ("Texas", "TX", "Austin"),
            ("Florida", "FL", "Miami"),
            ("Illinois", "IL", "Chicago"),
            ("Washington", "WA", "Seattle"),
        ],
        domains: &[
            "gmail.com",
            "yahoo.com",
            "outlook.com",
            "icloud.com",
            "aol.com",
        ],
        phone_prefix: "+1415",
        phone_digits: 7,
    },
    Country {
        code: "ES",
        name: "Spain",
        weight: 15,
        time_zone: "Europe/Madrid",
        first_names: &[
            "Ana", "María", "Lucía", "Carmen", "Javier", "Carlos", "José", "Laura", "Pablo",
            "Sofía", "Álvaro", "Marta", "Sergio", "Elena", "Raúl", "Nuria",
        ],
        last_names: &[
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Martín",
            "Jiménez",
            "Ruiz",
            "Hernández",
            "Díaz",
            "Moreno",
            "Muñoz",
        ],
        states: &[
            ("Andalusia", "AN", "Málaga"),
            ("Madrid", "MD", "Madrid"),
            ("Catalonia", "CT", "Barcelona"),
            ("Valencia", "VC", "Valencia"),
            ("Basque Country", "PV", "Bilbao"),
        ],
        domains: &["gmail.com", "hotmail.es", "yahoo.es", "telefonica.net"],
        phone_prefix: "+346",
        phone_digits: 8,
    },
    Country {
        code: "GB",
        name: "United Kingdom",
        weight: 10,
        time_zone: "Europe/London",
        first_names: &[
            "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Charlie",
            "Grace", "Thomas", "Lily",
        ],
        last_names: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas",
            "Roberts", "Walker", "Wright", "Hughes",
        ],
        states: &[
            ("England", "ENG", "London"),
            ("Scotland", "SCT", "Edinburgh"),
            ("Wales", "WLS", "Cardiff"),
        ],
        domains: &["gmail.com", "btinternet.com", "outlook.com", "sky.com"],
        phone_prefix: "+4477",
        phone_digits: 8,
    },
    Country {
        code: "DE",
        name: "Germany",
        weight: 10,
        time_zone: "Europe/Berlin",
        first_names: &[
            "Lukas", "Anna", "Leon", "Lea", "Finn", "Hannah", "Jonas", "Lena", "Paul", "Marie",
            "Felix", "Sophie",
        ],
        last_names: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Koch",
            "Richter",
        ],
        states: &[
            ("Bavaria", "BY", "Munich"),
            ("Berlin", "BE", "Berlin"),
            ("Hamburg", "HH", "Hamburg"),
            ("Hesse", "HE", "Frankfurt am Main"),
        ],
        domains: &["gmx.de", "web.de", "gmail.com", "t-online.de"],
        phone_prefix: "+49151",
        phone_digits: 8,
    },
    Country {
        code: "FR",
        name: "France",
        weight: 8,
        time_zone: "Europe/Paris",
        first_names: &[
            "Louis", "Emma", "Gabriel", "Jade", "Léo", "Louise", "Hugo", "Chloé", "Arthur",
            "Manon", "Jules", "Camille",
        ],
        last_names: &[
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
            "Leroy", "Moreau", "Simon", "Laurent",
        ],
        states: &[
            ("Île-de-France", "IDF", "Paris"),
            ("Provence-Alpes-Côte d'Azur", "PAC", "Marseille"),
            ("Auvergne-Rhône-Alpes", "ARA", "Lyon"),
        ],
        domains: &["orange.fr", "gmail.com", "free.fr", "laposte.net"],
        phone_prefix: "+3366",
        phone_digits: 7,
    },
    Country {
        code: "IT",
        name: "Italy",
        weight: 7,
        time_zone: "Europe/Rome",
        first_names: &[
            "Giulia",
            "Francesco",
            "Sofia",
            "Alessandro",
            "Aurora",
            "Lorenzo",
            "Martina",
            "Matteo",
            "Chiara",
            "Andrea",
        ],
        last_names: &[
            "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
            "Marino", "Greco",
        ],
        states: &[
            ("Lazio", "62", "Rome"),
            ("Lombardy", "25", "Milan"),
            ("Campania", "72", "Naples"),
        ],
        domains: &["libero.it", "gmail.com", "virgilio.it", "tiscali.it"],
        phone_prefix: "+393",
        phone_digits: 9,
    },
    Country {
        code: "BR",
        name: "Brazil",
        weight: 8,
        time_zone: "America/Sao_Paulo",
        first_names: &[
            "João", "Maria", "Pedro", "Ana", "Lucas", "Juliana", "Gabriel", "Beatriz", "Rafael",
            "Larissa",
        ],
        last_names: &[
            "Silva",
            "Santos",
            "Oliveira",
            "Souza",
            "Lima",
            "Pereira",
            "Ferreira",
            "Costa",
            "Rodrigues",
            "Almeida",
        ],
        states: &[
            ("São Paulo", "SP", "São Paulo"),
            ("Rio de Janeiro", "RJ", "Rio de Janeiro"),
            ("Minas Gerais", "MG", "Belo Horizonte"),
        ],
        domains: &["gmail.com", "hotmail.com", "uol.com.br", "bol.com.br"],
        phone_prefix: "+55119",
        phone_digits: 8,
    },
    Country {
        code: "MX",
        name: "Mexico",
        weight: 7,
        time_zone: "America/Mexico_City",
        first_names: &[
            "Santiago",
            "Valentina",
            "Mateo",
            "Regina",
            "Diego",
            "Camila",
            "Emiliano",
            "Ximena",
            "Leonardo",
            "Fernanda",
        ],
        last_names: &[
            "Hernández",
            "García",
            "Martínez",
            "López",
            "González",
            "Pérez",
            "Rodríguez",
            "Sánchez",
            "Ramírez",
            "Cruz",
        ],
        states: &[
            ("Mexico City", "CMX", "Mexico City"),
            ("Jalisco", "JAL", "Guadalajara"),
            ("Nuevo León", "NLE", "Monterrey"),
        ],
        domains: &["gmail.com", "hotmail.com", "outlook.com", "prodigy.net.mx"],
        phone_prefix: "+5255",
        phone_digits: 8,
    },
];

const COMPANIES: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Pied Piper",
    "Vandelay Industries",
    "Soylent",
    "Tyrell",
    "Wonka Industries",
];

/// Email addresses are ASCII; names are not.
fn ascii_fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        let plain = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'Á' | 'À' => "a",
            'é' | 'è' | 'ê' | 'ë' | 'É' => "e",
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Î' => "i",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'Ó' => "o",
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' => "u",
            'ñ' | 'Ñ' => "n",
            'ç' | 'Ç' => "c",
            'ß' => "ss",
            '\'' | ' ' | '-' => "",
            other => {
                folded.extend(other.to_lowercase());
                continue;
            }
        };
        folded.push_str(plain);
    }
    folded
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn country(rng: &mut StdRng) -> Option<&'static Country> {
    // 5 in 105 contacts have no known location (private addresses).
    let mut roll = rng.gen_range(0..105u32);
    for country in COUNTRIES {
        if roll < country.weight {
            return Some(country);
        }
        roll -= country.weight;
    }
    None
}

/// One made-up contact of `project_id`, created before `now`.
fn contact(rng: &mut StdRng, project_id: Uuid, now: DateTime<Utc>) -> contact::ActiveModel {
    let place = country(rng);
    let people = place.unwrap_or(&COUNTRIES[0]);
    let first = *pick(rng, people.first_names);
    let last = *pick(rng, people.last_names);
    // Visitors who never answered the form stay anonymous.
    let name = rng.gen_bool(0.7).then(|| format!("{first} {last}"));
    let email = rng.gen_bool(0.6).then(|| {
        let local = match rng.gen_range(0..4) {
            0 => format!("{}.{}", ascii_fold(first), ascii_fold(last)),
            1 => format!("{}{}", ascii_fold(first), rng.gen_range(1..2000)),
            2 => format!("{}{}", &ascii_fold(first)[..1], ascii_fold(last)),
            _ => format!(
                "{}_{}{}",
                ascii_fold(last),
                ascii_fold(first),
                rng.gen_range(1..99)
            ),
        };
        format!("{local}@{}", pick(rng, people.domains))
    });
    // The digit after the prefix is never 0 or 1, which no carrier hands
    // out there; the test checks the numbers against the form's validation
    // (too slow to run on a million rows).
    let phone = rng.gen_bool(0.4).then(|| {
        let mut number = String::from(people.phone_prefix);
        number.push(char::from(b'0' + rng.gen_range(2..10u8)));
        for _ in 1..people.phone_digits {
            number.push(char::from(b'0' + rng.gen_range(0..10u8)));
        }
        number
    });
    let company = rng
        .gen_bool(0.2)
        .then(|| (*pick(rng, COMPANIES)).to_owned());
    let state = place.map(|country| *pick(rng, country.states));

    let age = Duration::seconds(rng.gen_range(0..HISTORY_DAYS * 86_400));
    let created_at = now - age;
    // Most visitors come back within days; some never again.
    let seen_after = Duration::seconds(rng.gen_range(0..=age.num_seconds().min(30 * 86_400)));
    let last_seen_at = created_at + seen_after;
    let nanos = created_at.timestamp_subsec_nanos();
    let timestamp = Timestamp::from_unix(NoContext, created_at.timestamp() as u64, nanos);
    let id = Uuid::new_v7(timestamp);

    contact::ActiveModel {
        id: Set(id),
        project_id: Set(project_id),
        name: Set(name),
        email: Set(email),
        phone: Set(phone),
        company: Set(company),
        custom_attributes: Set(json!({})),
        last_ip: Set(None),
        country_code: Set(place.map(|country| country.code.to_owned())),
        country_name: Set(place.map(|country| country.name.to_owned())),
        state_name: Set(state.map(|(name, _, _)| name.to_owned())),
        state_code: Set(state.map(|(_, code, _)| code.to_owned())),
        city: Set(state.map(|(_, _, city)| city.to_owned())),
        time_zone: Set(place.map(|country| country.time_zone.to_owned())),
        location_corrected: Set(false),
        field_sources: Set(json!({})),
        first_seen_at: Set(created_at),
        last_seen_at: Set(last_seen_at),
        created_at: Set(created_at),
        updated_at: Set(last_seen_at),
        ..Default::default()
    }
}

/// Inserts `count` made-up contacts into a project, in multi-row INSERTs
/// grouped into transactions; the same `seed` makes the same contacts.
/// `progress` hears the running total after each transaction.
pub async fn seed_contacts(
    db: &DatabaseConnection,
    project_id: Uuid,
    count: u64,
    seed: u64,
    progress: impl Fn(u64),
) -> AppResult<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc::now();
    let mut inserted = 0u64;
    while inserted < count {
        let txn = db.begin().await?;
        for _ in 0..STATEMENTS_PER_TRANSACTION {
            let rows = (count - inserted).min(ROWS_PER_STATEMENT as u64);
            if rows == 0 {
                break;
            }
            let batch: Vec<_> = (0..rows)
                .map(|_| contact(&mut rng, project_id, now))
                .collect();
            contact::Entity::insert_many(batch).exec(&txn).await?;
            inserted += rows;
        }
        txn.commit().await?;
        progress(inserted);
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_contacts_look_real_and_repeat_with_the_seed() {
        let project = Uuid::now_v7();
        let now = Utc::now();
        let mut rng = StdRng::seed_from_u64(7);
        let contacts: Vec<_> = (0..500).map(|_| contact(&mut rng, project, now)).collect();
        let emails: Vec<String> = contacts
            .iter()
            .filter_map(|c| c.email.clone().unwrap())
            .collect();
        assert!(emails.len() > 200 && emails.len() < 400, "{}", emails.len());
        assert!(
            emails
                .iter()
                .all(|email| email.is_ascii() && email.contains('@'))
        );
        let phones: Vec<String> = contacts
            .iter()
            .filter_map(|c| c.phone.clone().unwrap())
            .collect();
        assert!(phones.len() > 150, "{}", phones.len());
        let invalid: Vec<&String> = phones
            .iter()
            .filter(|phone| {
                crate::domain::fields::parse_phone(phone, "phone", None).ok()
                    != Some((*phone).clone())
            })
            .collect();
        assert!(invalid.is_empty(), "{invalid:?}");
        assert!(contacts.iter().all(|c| {
            c.created_at.clone().unwrap() <= c.last_seen_at.clone().unwrap()
                && c.created_at.clone().unwrap() <= now
        }));
        let mut again = StdRng::seed_from_u64(7);
        let first_again = contact(&mut again, project, now);
        assert_eq!(first_again.name, contacts[0].name);
        assert_eq!(ascii_fold("José Muñoz-Ávila"), "josemunozavila");
    }
}
