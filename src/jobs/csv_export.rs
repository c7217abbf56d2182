//! Contacts as CSV rows, safe to open in a spreadsheet.

use std::borrow::Cow;

use entity::contact;
use serde_json::Value;

const BASE_COLUMNS: [&str; 13] = [
    "id",
    "name",
    "email",
    "phone",
    "company",
    "country",
    "state",
    "province",
    "city",
    "postal_code",
    "time_zone",
    "created_at",
    "last_seen_at",
];

/// A spreadsheet runs a cell that starts with one of these as a formula;
/// a leading apostrophe makes it text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn attribute_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes contacts as CSV in chunks: the header once, then rows as they
/// are read, each chunk into bytes that an async file can take.
pub struct ContactCsv {
    attribute_keys: Vec<String>,
}

impl ContactCsv {
    pub fn new(mut attribute_keys: Vec<String>) -> Self {
        attribute_keys.sort();
        attribute_keys.dedup();
        ContactCsv { attribute_keys }
    }

    /// The contact columns, then one column per custom attribute (prefixed
    /// where a key would repeat a contact column).
    pub fn header(&self) -> csv::Result<Vec<u8>> {
        let header: Vec<String> = BASE_COLUMNS
            .iter()
            .map(|column| (*column).to_owned())
            .chain(self.attribute_keys.iter().map(|key| {
                if BASE_COLUMNS.contains(&key.as_str()) {
                    format!("attribute_{key}")
                } else {
                    key.clone()
                }
            }))
            .map(|name| neutralise(&name).into_owned())
            .collect();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&header)?;
        into_bytes(writer)
    }

    pub fn rows(&self, contacts: &[contact::Model]) -> csv::Result<Vec<u8>> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::with_capacity(contacts.len() * 160));
        let mut record = csv::StringRecord::new();
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        for contact in contacts {
            record.clear();
            let cells = [
                contact.id.to_string(),
                text(&contact.name),
                text(&contact.email),
                text(&contact.phone),
                text(&contact.company),
                text(&contact.country_code),
                text(&contact.state_name),
                text(&contact.province_name),
                text(&contact.city),
                text(&contact.postal_code),
                text(&contact.time_zone),
                contact.created_at.to_rfc3339(),
                contact.last_seen_at.to_rfc3339(),
            ];
            for cell in &cells {
                record.push_field(&neutralise(cell));
            }
            for key in &self.attribute_keys {
                let value = attribute_text(contact.custom_attributes.get(key));
                record.push_field(&neutralise(&value));
            }
            writer.write_record(&record)?;
        }
        into_bytes(writer)
    }
}

fn into_bytes(writer: csv::Writer<Vec<u8>>) -> csv::Result<Vec<u8>> {
    writer
        .into_inner()
        .map_err(|error| csv::Error::from(std::io::Error::other(error.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn formula_starts_are_neutralised() {
        for cell in ["=SUM(A1)", "+34612345678", "-1", "@cmd", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        for cell in ["Ana", "", "a=b", "42"] {
            assert_eq!(neutralise(cell), cell);
        }
    }

    #[test]
    fn rows_have_every_column_and_attributes_in_key_order() {
        let now = Utc::now();
        let contact = contact::Model {
            id: uuid::Uuid::nil(),
            project_id: uuid::Uuid::nil(),
            visitor_id: "v".into(),
            name: Some("=HYPERLINK(\"x\")".into()),
            email: Some("ana@example.com".into()),
            phone: None,
            company: Some("Acme, Inc.".into()),
            custom_attributes: serde_json::json!({"seats": 3, "plan": "Pro", "city": "x"}),
            last_ip: None,
            country_code: Some("ES".into()),
            country_name: None,
            state_name: Some("Andalusia".into()),
            state_code: None,
            province_name: Some("Málaga".into()),
            province_code: None,
            city: Some("Málaga".into()),
            postal_code: None,
            time_zone: None,
            latitude: None,
            longitude: None,
            accuracy_radius_km: None,
            location_corrected: false,
            external_id: None,
            field_sources: serde_json::json!({}),
            first_seen_at: now,
            last_seen_at: now,
            created_at: now,
            updated_at: now,
        };
        let csv = ContactCsv::new(vec!["seats".into(), "plan".into(), "city".into()]);
        let mut bytes = csv.header().unwrap();
        bytes.extend(csv.rows(std::slice::from_ref(&contact)).unwrap());
        let text = String::from_utf8(bytes).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<_> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header.len(), 16);
        assert_eq!(&header[13..], ["attribute_city", "plan", "seats"]);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "'=HYPERLINK(\"x\")");
        assert_eq!(&row[4], "Acme, Inc.");
        assert_eq!(&row[7], "Málaga");
        assert_eq!(&row[14], "Pro");
        assert_eq!(&row[15], "3");
    }
}
