//! The mails of accounts: invitations and password resets, each with a
//! link into the agents' app that carries a single-use token.

use crate::mail::OutgoingMail;

/// The link to the agents' app page that takes `token`, e.g.
/// `https://app.example.com/invitations/inv_...`.
pub fn link(app_url: &str, page: &str, token: &str) -> String {
    format!("{}/{page}/{token}", app_url.trim_end_matches('/'))
}

/// Names and other text that came from people go into a subject line:
/// no line breaks, bounded.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect()
}

pub fn invitation_for_agent(to: &str, project_name: &str, link: &str, hours: u64) -> OutgoingMail {
    let project = one_line(project_name);
    OutgoingMail {
        to: to.to_owned(),
        subject: format!("You are invited to the project {project}"),
        text_body: format!(
            "You are invited to join the project {project}.\n\n\
             Accept it in the agents' app, under your invitations, or open this link:\n\
             {link}\n\n\
             The invitation expires in {hours} hours. If you did not expect it, ignore this mail: \
             nothing changes until you accept.\n"
        ),
        html_body: None,
    }
}

pub fn invitation_for_newcomer(
    to: &str,
    project_name: &str,
    link: &str,
    hours: u64,
) -> OutgoingMail {
    let project = one_line(project_name);
    OutgoingMail {
        to: to.to_owned(),
        subject: format!("You are invited to the project {project}"),
        text_body: format!(
            "You are invited to join the project {project}.\n\n\
             Open this link to create your account and join:\n\
             {link}\n\n\
             The invitation expires in {hours} hours. If you did not expect it, ignore this mail.\n"
        ),
        html_body: None,
    }
}

pub fn password_reset(to: &str, link: &str, minutes: u64) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Reset your password".to_owned(),
        text_body: format!(
            "Someone asked to reset the password of your account.\n\n\
             Open this link to choose a new one (it works once, for {minutes} minutes):\n\
             {link}\n\n\
             Setting a new password ends every session of your account. If you did not ask, \
             ignore this mail: your password stays as it is.\n"
        ),
        html_body: None,
    }
}

/// Sent when a reset is asked for an address without an account, so that
/// both cases cost the same and the owner of the address learns why no
/// link came.
pub fn password_reset_without_account(to: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Reset your password".to_owned(),
        text_body: "Someone asked to reset the password of an account with this address, \
             but no account uses it. If you expected one, ask the admin of your project \
             for an invitation. If you did not ask, ignore this mail.\n"
            .to_owned(),
        html_body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_the_app_url_and_the_token() {
        assert_eq!(
            link("https://app.example.com/", "reset", "pr_abc"),
            "https://app.example.com/reset/pr_abc"
        );
    }

    #[test]
    fn project_names_cannot_break_the_subject() {
        let mail = invitation_for_agent("a@example.com", "Shop\r\nBcc: x", "https://l", 168);
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
        assert!(mail.text_body.contains("https://l"));
    }
}
