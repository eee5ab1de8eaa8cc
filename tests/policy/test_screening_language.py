"""Screening reads language, not keywords: inflections, misspellings, who a sentence is about,
and words that make a match about a thing rather than a person."""

from functools import cache

import pytest

from tidings.policy.screening import CATEGORIES, Screener
from tidings.policy.screening_terms import TermList, TermMatcher, build_nlp

RELIGION = "religious_or_philosophical_beliefs"
SEX = "sex_life_or_orientation"


@cache
def screener() -> Screener:
    return Screener()


def found(text: str) -> set[str]:
    return {f.category for f in screener().find(text, CATEGORIES)}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # Indirect statements: the fact is implied by a treatment, a record, a membership.
        ("We'd like to start again after a break, since my chemo finished in May.", "health"),
        ("After my conviction was spent I started a removals business.", "criminal_history"),
        ("I'm a member of Unite.", "trade_union_membership"),
        ("My husband and I run a B&B together — we're both blokes.", "sex_life_or_orientation"),
        (
            "Our imam suggested we use your tool, and I volunteer at the mosque.",
            "religious_or_philosophical_beliefs",
        ),
        ("My DNA results came back and I've found a half-brother.", "genetic"),
        ("Please delete the face scan your app took when I verified my age.", "biometric"),
        ("My parents came over from Jamaica in the sixties.", "racial_or_ethnic_origin"),
        ("I've been canvassing for the Greens all weekend.", "political_opinions"),
    ],
)
def test_indirect_statements_are_found(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "The defendant was convicted of fraud.",
        "He convicts nobody; he was convicted himself in 2010.",
        "Both brothers have convictions for theft.",
    ],
)
def test_every_inflection_of_a_term_matches(text):
    assert found(text) == {"criminal_history"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("i have diabetis so i need the meeting before lunch pls", "health"),
        ("my husbnd is having chemotherpy so we close the shop", "health"),
        ("i got epilepsey so no flashing things pls", "health"),
        ("im on antidepressents and forget things", "health"),
    ],
)
def test_misspelt_terms_are_read_as_the_terms(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour, j'ai une question sur la facture de novembre. Merci, Claire",
        "Question sur la facture de novembre",
        "Hola, tengo una pregunta sobre la factura del mes pasado. Gracias",
        "Guten Tag, ich habe eine Frage zu der Rechnung. Danke und viele Grüße",
    ],
)
def test_a_text_in_another_language_is_not_spelling_corrected_into_terms(text):
    """English spelling correction read the French "facture" (invoice) as "fracture": every
    French customer's invoice question was redacted as health."""
    assert found(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        # A topic, an organisation or a product, not anyone's fact.
        "We sponsor the cancer research charity's fun run every year.",
        "We sell health insurance to small firms.",
        "Our office is on Union Street, next to the bank.",
        "We do party planning: kids' birthdays and hen dos.",
        "I'm a criminal lawyer and send a monthly case-law digest.",
        "I keep forgetting my PIN for your login.",
        "We support people with dementia and their carers.",
        "Our scheduler uses a genetic algorithm to pick send times.",
        "We're a credit union with 8,000 members.",
        # A partner's sex without the writer's says nothing about orientation.
        "My husband and I run a B&B and would like to email past guests.",
        # Words that look like terms but are another word: "fined" is not every "fine".
        "Anything before 5 is fine; I'll send the invoice dated Monday.",
    ],
)
def test_things_and_topics_are_not_people(text):
    assert found(text) == set()


def test_a_personal_term_needs_someone_in_the_sentence():
    assert found("Cancer is the theme of the charity's spring appeal.") == set()
    assert found("My cancer came back last spring.") == {"health"}


@pytest.mark.parametrize(
    "text",
    [
        # A list of kinds of data names categories; it says nothing about anyone.
        "We never ask about religion, ethnicity or sexual orientation on our sign-up form.",
        "The report covers age, gender and disability across the sector.",
        # Pets are not people.
        "My dog is diabetic and the vet bills are something else.",
        # Groups described by who they are, and topics of a film or a book.
        "Volunteers who are unwell should stay at home that day.",
        "We watched a documentary about prisons at the staff away-day.",
        # Other people's strikes, figurative uses, an organisation speaking of itself.
        "The buses are on strike so the courier is late.",
        "That near-miss on the send button nearly gave me a heart attack.",
        "We are a Sikh gurdwara committee and want to email our volunteers about the langar rota.",
    ],
)
def test_lists_of_categories_pets_groups_and_figures_of_speech_are_not_disclosures(text):
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Been on statins and blood thinners since the spring.", "health"),
        ("I came out last year and my team has been great.", "sex_life_or_orientation"),
        ("His husband runs the shop with him.", "sex_life_or_orientation"),
        ("My grandparents are from Punjab; I grew up in Leicester.", "racial_or_ethnic_origin"),
        ("Converted to Buddhism a few years back.", "religious_or_philosophical_beliefs"),
        ("I've got nine penalty points, so I take the train now.", "criminal_history"),
        ("The new clocking system scanned my thumb without asking me.", "biometric"),
    ],
)
def test_broader_terms_and_constructions_are_found(text, category):
    assert category in found(text)


def test_denials_are_statements_in_the_category_too():
    # The policy covers what a person says about themselves either way.
    assert found("I'm not religious at all, never have been.") == {
        "religious_or_philosophical_beliefs"
    }


class TestTermSyntax:
    @pytest.fixture(scope="class")
    def nlp(self):
        return build_nlp()

    def matches(self, nlp, terms: TermList, text: str) -> list[str]:
        matcher = TermMatcher(nlp, [terms], frozenset({"i", "my"}))
        doc = nlp(text)
        matcher.annotate(doc)
        return [doc[m.start : m.end].text for m in matcher.find(doc)]

    def test_alternatives_optional_words_and_exact_forms(self, nlp):
        terms = TermList(
            "health",
            strong=["walking stick|frame", "wait? list for", "=MS", "husband _* be a man"],
            personal=["~fined"],
        )
        assert self.matches(nlp, terms, "I use a walking frame.") == ["walking frame"]
        assert self.matches(nlp, terms, "Waiting list for a hip.") == ["Waiting list for"]
        assert self.matches(nlp, terms, "ms word crashed") == []
        assert self.matches(nlp, terms, "I have MS") == ["MS"]
        assert self.matches(nlp, terms, "I was fined, that's fine") == ["fined"]
        assert self.matches(nlp, terms, "My husband and I, and yes I am a man") == [
            "husband and I, and yes I am a man"
        ]
        assert self.matches(nlp, terms, "My husband. A man came.") == []  # not across sentences

    def test_blockers_just_before_or_after_a_term_cancel_it(self, nlp):
        terms = TermList(
            "health",
            personal=["cancer"],
            not_before=["charity"],
            not_after=["people with"],
        )
        assert self.matches(nlp, terms, "My cancer charity run.") == []
        assert self.matches(nlp, terms, "I help people with cancer.") == []
        assert self.matches(nlp, terms, "My cancer is back.") == ["cancer"]

    def test_a_phrase_that_matches_anything_is_refused(self, nlp):
        with pytest.raises(ValueError, match="matches anything"):
            TermMatcher(nlp, [TermList("health", strong=["_ _?"])], frozenset())

    def test_an_exact_word_with_options_is_refused(self, nlp):
        # "~went|~gone" used to compile to one word that no text has, so it never matched.
        with pytest.raises(ValueError, match="exact word"):
            TermMatcher(nlp, [TermList("health", strong=["my back ~went|~gone"])], frozenset())
        with pytest.raises(ValueError, match="exact word"):
            TermMatcher(nlp, [TermList("health", strong=["=Unite|=GMB rep"])], frozenset())
        with pytest.raises(ValueError, match="exact word"):
            TermMatcher(
                nlp, [TermList("politics", strong=["standing for office|=Labour"])], frozenset()
            )


@pytest.mark.parametrize(
    "text",
    [
        "My boyfriend Dave is the other director; I'm Tom.",
        "Me and my wife have two boys; I'm Sarah and she's Jo.",
        "Contact's husband, Mark, is the co-founder; the contact is Steve.",
        "Has a wife named Sarah; contact is Emma.",
        "Mark's husband Ahmed will join the call.",
        "Met his partner Steve at the conference.",
        "Kevin is married to Brian, so send the invite to both.",
        "My ex-boyfriend, James, still gets my invoices. I'm David.",
        "I'm engaged to Priya. I'm Anjali, from the Leicester branch.",
    ],
)
def test_a_same_sex_couple_shown_by_a_partner_and_a_name_is_found(text):
    assert found(text) == {"sex_life_or_orientation"}


@pytest.mark.parametrize(
    "text",
    [
        "My husband and I share the account.",  # the writer's sex is unknown
        "Hi, I'm Emma; my husband Tom asked me to get in touch.",
        "I'm Sarah's husband, writing on her behalf.",
        "My wife Lucy and I (I'm Rob) want to join.",
        "Sam and his wife Rachel will attend.",
        "My partner Alex will handle the invoices.",
        "My business partner Dave and I run the shop; I'm Tom.",
        "Tom and Sarah are married.",
    ],
)
def test_a_couple_of_unknown_or_different_sexes_is_not_a_finding(text):
    assert "sex_life_or_orientation" not in found(text)


def test_the_couple_sentences_are_removed_with_the_rest_kept():
    screened = screener().screen(
        "Please renew the plan.\nMy boyfriend Dave pays.\nI'm Tom.", CATEGORIES
    )
    assert "Dave" not in screened.text and "Tom" not in screened.text
    assert screened.text.startswith("Please renew the plan.")


def test_a_stop_word_after_a_construction_does_not_cancel_it():
    # "through" marks the everyday sense of a weak word ("straight through"), not of "her wife".
    assert found("Paula met her wife through the running club.") == {"sex_life_or_orientation"}
    assert found("We're both lads from Leeds, me and my husband.") == {"sex_life_or_orientation"}
    assert found("I came straight from the airport.") == set()


@pytest.mark.parametrize(
    "text",
    [
        "Can the signup form ask about disability so we can offer reasonable adjustments?",
        "What happens if a subscriber writes their religion in the comments box?",
        "Does your form builder let us ask attendees about dietary needs like halal or kosher?",
    ],
)
def test_a_question_about_the_product_or_a_hypothetical_is_not_a_disclosure(text):
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Is my son's asthma a problem for the warehouse tour?", "health"),
        ("Can you avoid Fridays? I'm Muslim.", "religious_or_philosophical_beliefs"),
    ],
)
def test_a_question_about_someone_in_particular_still_counts(text, category):
    assert category in found(text)


def test_a_term_that_opens_a_business_name_is_the_name():
    assert found("Our Kosher Kitchen cookbook launches in March.") == set()
    assert found("Rabbi Cohen's office called about the invoice.") == {
        "religious_or_philosophical_beliefs"
    }


@pytest.mark.parametrize(
    "text",
    [
        "I'm off to Mass... just kidding, I'm off to the gym.",
        "We're a Muslim matrimonial website? No — we're a general dating site, sorry.",
    ],
)
def test_words_taken_back_are_not_a_disclosure(text):
    assert found(text) == set()


def test_only_the_clause_taken_back_is_dropped():
    text = "Signed up via the Extinction Rebellion stall; arrested? no. Just a supporter."
    assert found(text) == {"political_opinions"}


@pytest.mark.parametrize(
    "text",
    [
        "The nursery pickup uses a face scan for parents and I'm one of them.",
        "My kid's school uses iris scanners for the library and I never signed anything.",
        "The gym uses a fingerprint reader at the door, mine included.",
        "Do you keep the face scans the venue took? I was one of the attendees.",
        "My gym uses a vein scanner on my hand to let me in.",
    ],
)
def test_a_device_said_to_capture_the_writer_is_their_biometric_data(text):
    assert found(text) == {"biometric"}


@pytest.mark.parametrize(
    "text",
    [
        "The nursery pickup uses a face scan for parents.",
        "My kid's school uses iris scanners for the library.",
        "The fingerprint reader at reception is broken again, so everyone uses cards.",
        "Do you keep the face scans the venue took?",
    ],
)
def test_a_device_with_no_one_said_to_be_captured_is_a_thing(text):
    assert found(text) == set()


def test_a_word_before_is_is_the_subject_not_a_blocker():
    # "client" blocks "our client mosque"; before "is" it names the person the fact is about.
    assert found("Client is a Hindu priest who runs wedding ceremonies.") == {
        "religious_or_philosophical_beliefs"
    }
    assert found("We cater for a client mosque in Leeds.") == set()


@pytest.mark.parametrize(
    "text",
    [
        "It was a baptism of fire, my first week running the newsletter alone.",
        "Is it kosher to email people who bought from us two years ago?",
        "I have faith in your team, just fix the import please.",
        "I work for the Church of England as a finance officer.",
        "I'm allergic to pop-ups on websites.",
        "I'm sick and tired of chasing invoices.",
        "My boss's vision for the brand is calm luxury.",
        "I need some retail therapy after this migration.",
    ],
)
def test_faith_and_health_words_in_their_everyday_senses_are_not_disclosures(text):
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I'm allergic to penicillin, so no to the free sample.", "health"),
        ("I have faith in God and it gets me through.", "religious_or_philosophical_beliefs"),
        ("My daughter's confirmation is on Sunday.", "religious_or_philosophical_beliefs"),
        ("cant do calls this week, got pnuemonia", "health"),
    ],
)
def test_the_same_words_in_their_own_sense_still_count(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("We write on behalf of our client, who has a conviction for theft.", "criminal_history"),
        (
            "Our client, who is a practising Catholic, asks for Sundays off.",
            "religious_or_philosophical_beliefs",
        ),
    ],
)
def test_our_client_who_is_a_person_not_the_organisation_speaking(text, category):
    assert found(text) == {category}


def test_our_clients_who_are_a_group_are_still_not_a_person():
    assert found("Our clients who are Muslim like the Eid range.") == set()


@pytest.mark.parametrize(
    "text",
    [
        "At the depot you clock in with your thumb now.",
        "The turnstile camera looked at my face and let me through.",
        "The office reader maps the veins in my palm.",
        "Border staff took all of my fingers and a photo.",
        "The attendance terminal measures the shape of my hand.",
        "The bank's phone line checks it's really me speaking.",
        "My car recognises me by my face and moves the seat.",
    ],
)
def test_biometric_capture_said_in_everyday_ways_is_found(text):
    assert found(text) == {"biometric"}


@pytest.mark.parametrize(
    "text",
    [
        "This handbook is our bible for onboarding.",
        "The caterer serves halal and kosher platters for weddings.",
        "Can we fingerprint the export files before sending them?",
        "My nerves can't take another migration like that.",
        "The Vicar of Dibley DVD is back in stock.",
        "Please check in with your hand luggage at desk 4.",
    ],
)
def test_figures_of_speech_trades_and_titles_are_not_disclosures(text):
    assert found(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        "I'm back at the pain clinic on Tuesday.",
        "She walks with a stick since the fall.",
        "Hearing aids in both ears, so email is best.",
        "He's on light duties until March.",
    ],
)
def test_health_said_indirectly_is_found(text):
    assert found(text) == {"health"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # A form's answer after its field label is a note about the contact.
        ("Medical needs: epipen in bag (nuts), inhaler before PE", "health"),
        # A note or a chat line with its subject left out is the writer's or the contact's.
        ("Has an EHCP for autism, 1:1 TA in the mornings", "health"),
        ("Went flying down the stairs at Christmas, still in a boot, so no school run", "health"),
        ("cant make 5 a side tonite lads, the knee needs rest after the op", "health"),
        # A practice clashing with *my* time is the writer's own practice.
        (
            "Had to swap my late shift because Jummah clashes with my lunch break",
            "religious_or_philosophical_beliefs",
        ),
    ],
)
def test_form_answers_and_subjectless_lines_are_about_someone(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        # a field label is not a person: the answer alone decides
        "Blue Badge renewal reminder sent to all residents on the permit list",
        # questions keep their subject: "Has anyone ...?"
        "Has anyone else had the ASD field vanish from the form?",
        # a festival clashing with our launch is a date
        "Diwali clashes with our launch week, can we move it?",
        # figures of speech and the law itself, said to anyone
        "that new bbq place is criminal, 9 quid for a bap",
        "This role is exempt under the Rehabilitation of Offenders Act.",
        "You may be accompanied at the hearing by a colleague or a trade union representative.",
        # a phone's own unlock that does not work is a broken reader, not a capture
        "face ID on the app isn't working since the update, it keeps asking for my passcode",
    ],
)
def test_registers_hard_negatives_are_not_disclosures(text):
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # a title and a surname are a person in a letter
        (
            "Dear Mrs Okafor, your appointment at the Fracture Clinic has moved to Thursday.",
            "health",
        ),
        ("I confirm that Mr Hughes attended the Memory Assessment Service on 2 May.", "health"),
        # disability benefits and a hospital in chat shorthand
        ("PIP tribunal finally came through, enhanced rate for daily living", "health"),
        ("sorry for slow reply im in hosp with my little one, shes on a drip", "health"),
        # a body part as a key, all ten prints, prints given for a clock
        ("my daughters school make the kids use there finger for the library books", "biometric"),
        ("At airport they take my all ten fingers, is normal for UK visa?", "biometric"),
        ("Induction: wouldn't give prints for the time clock, on PIN instead", "biometric"),
        (
            "sorry cant come to the stag, im not drinking since i took shahada",
            "religious_or_philosophical_beliefs",
        ),
    ],
)
def test_letters_benefits_and_chat_shorthand_are_found(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Our dog's on Metacam for his hips now, vet reckons it's arthritis",
        "Started couch to 5k, knees are screaming but I'm loving it",
        "honestly that Greggs steak bake is my religion now",
        "Meeting in the Unison Room at the Town Hall, 2pm",
        "Fingerprint sign-in on the Monzo app greyed out after I changed phone",
    ],
)
def test_pets_exercise_rooms_and_app_settings_are_not_disclosures(text):
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("my mum is having the sugar and pressure both, doctor changed tablets", "health"),
        ("Off me face on gabapentin after the nerve thing flared up", "health"),
        ("She's away to the Royal Infirmary for her bloods and a scan on the lump", "health"),
        (
            "Sir please avoid call on tuesday i am keeping fast for Hanuman ji",
            "religious_or_philosophical_beliefs",
        ),
        (
            "Not been to confession since school, but I'd still tick RC",
            "religious_or_philosophical_beliefs",
        ),
        ("I'm half Bajan on my dad's side", "racial_or_ethnic_origin"),
        ("at my new warehouse job they put the finger in the machine every shift", "biometric"),
    ],
)
def test_dialect_medicines_fasts_and_demonyms_are_found(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Lost my face in the photo, the ring light blew it out completely",
        "RCN guidance on uniforms has changed, can someone send it to the ward WhatsApp",
        "Can we switch off the fingerprint scanner prompt for staff logging into the POS tablets?",
        "We're opening a second shop in Golders Green next month",
    ],
)
def test_photos_union_guidance_settings_and_places_are_not_disclosures(text):
    assert found(text) == set()


def test_a_genetic_counsellor_is_genetic_not_health():
    assert found("My genetic counsellor has advised me to tell my siblings the result.") == {
        "genetic"
    }


@pytest.mark.parametrize(
    ("text", "category"),
    [
        (
            "Landlord's put a fingerprint lock on the front door and says we all have to register",
            "biometric",
        ),
        (
            "Been going to the Buddhist centre in Sheffield on Wednesdays for meditation",
            "religious_or_philosophical_beliefs",
        ),
        ("Handed out Lib Dem leaflets in the rain all Saturday, never again", "political_opinions"),
    ],
)
def test_duties_practice_and_leaflets_said_in_passing_are_found(text, category):
    assert category in found(text)


def test_a_device_with_recognition_switched_off_is_not_a_capture():
    assert (
        found("Selling a Ring doorbell with facial recognition switched off, barely used") == set()
    )


@pytest.mark.parametrize(
    "text",
    [
        "My surname is Smith, not Smyth: please correct it.",
        "My family name is misspelt on your records.",
        "Please spell my name Ada Black, with a capital B.",
        "my surname is Black, please fix it",
        "Last name: Brown. Address: 3 Mill Lane.",
        "My maiden name was White and my name should read Ada Green now.",
    ],
)
def test_a_person_correcting_their_name_discloses_no_origin(text):
    """A rectification request on /rights/ had its text taken out: a bare "my surname is" was an
    origin cue, and Black, White and Brown are surnames as often as colours."""
    assert found(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        "My surname is Vietnamese and your form strips the accents.",
        "My last name's Korean so it goes first.",
        "Her name is Ada White and she is Black.",
    ],
)
def test_a_names_origin_or_a_person_of_colour_is_still_found(text):
    assert found(text) == {"racial_or_ethnic_origin"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # approving work, offences, slang and figures of speech
        ("The manager signed off the budget yesterday.", "health"),
        ("She signs off on every logo before it goes out.", "health"),
        ("Our Ryan's in court next week for the drink driving.", "health"),
        ("sick slides mate, loved the animations", "health"),
        ("I'm so OCD about kerning it's embarrassing", "health"),
        ("Gardening is my therapy after a week of invoices.", "health"),
        # practices, jobs and wards, a councillor's surgery, a genetic result
        ("The practice manager at Elmwood Surgery wants a demo on Thursday.", "health"),
        ("The councillor holds her surgery at the library on Fridays.", "health"),
        ("My husband works in A&E so evenings are hard for us.", "health"),
        ("I work as a carer for the council's home care service.", "health"),
        ("I had carrier testing for Gaucher disease last spring.", "health"),
        ("My consultant ordered a genetic panel and it found a variant in MYBPC3.", "health"),
        # trades, DNA shares, figures of speech, staff jobs, landmarks and businesses
        ("I'm a practising solicitor and need a newsletter for my clients.", RELIGION),
        ("The DNA kit says I'm 30% Ashkenazi Jewish.", RELIGION),
        ("pray for me lol, the migration is tonight", RELIGION),
        ("I keep the bible of our brand rules on my desk.", RELIGION),
        ("I work for the Catholic Church as their data officer.", RELIGION),
        ("My flat is walking distance to the synagogue, the gym and the station.", RELIGION),
        ("I park behind the Baptist chapel when I visit the office.", RELIGION),
        ("The vicar at St John's gave me your details.", RELIGION),
        ("Client is a Catholic care home, wants family updates.", RELIGION),
        ("As an agency we handle Ramadan campaigns for supermarket brands.", RELIGION),
        ("Please send the invoice to Christian in accounts.", RELIGION),
        ("She covers reception at the dental surgery on Mondays.", "health"),
        ("I'm always nervous before a big demo, ha.", "health"),
    ],
)
def test_jobs_places_trades_and_figures_of_speech_are_not_faith_or_health(text, category):
    assert category not in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I've been signed off the rest of the week with flu.", "health"),
        ("She was signed off on Monday, doctor's orders.", "health"),
        ("My son is sick again, sorry for the delay.", "health"),
        ("I'm genuinely addicted to painkillers and getting help.", "health"),
        ("My GP wants me tested for diabetes.", "health"),
        ("I'm a practising Catholic, so Sunday mornings are out.", RELIGION),
        ("I work as a chaplain for the hospital trust.", RELIGION),
        ("giv up choc for lent again, day 3 and dying", RELIGION),
        ("Please pray for us at Mass on Sunday.", RELIGION),
        ("Our vicar recommended your platform to us.", RELIGION),
        ("We're shomer Shabbos, so nothing on Saturdays please.", RELIGION),
        ("no wine for me thanks, it's against my deen", RELIGION),
        ("I lip-read, so please keep your camera on.", "health"),
    ],
)
def test_the_same_words_said_of_someone_still_count(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "I had chemo last week and I'm struggling with the login codes.",
        "They scanned my face when I walked into the shop.",
        "Visa done: they scanned all ten fingers and took my photo at the consulate.",
    ],
)
def test_a_date_a_scan_verb_or_a_meme_word_after_a_finding_does_not_hide_it(text):
    """ "last week" once blocked every health term before it (it was there for "recovering from
    last week"), "scanned" every biometric term it opened, and "my face when" was read as the
    meme even after "scanned"."""
    assert found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Still recovering from last week, what a launch!",
        "I recognised your face from the webinar last week! Great talk.",
        "My face when the invoice arrived!",
        "finger print thingy on the work laptop died after the update so its password only today",
    ],
)
def test_a_busy_week_a_familiar_face_and_a_dead_reader_are_not_disclosures(text):
    assert found(text) == set()


def test_gated_term_patterns_find_what_one_matcher_would():
    """The term lists' patterns are shared among several gated Matchers by their gate word; a
    text with words of two groups still finds both terms."""
    assert found("My blood results came back and I use my face to log in to the bank app.") == {
        "health",
        "biometric",
    }


@pytest.mark.parametrize(
    ("text", "category"),
    [
        (
            "The new gym signs members in by scanning your face at the door. Felt creepy, so I "
            "asked them to delete mine.",
            "biometric",
        ),
        ("Caller needs a relay service - the client is profoundly deaf.", "health"),
        ("sry cant make friday got physio on the shoulder again", "health"),
    ],
)
def test_the_writers_own_capture_a_named_client_and_a_chat_opener_are_about_someone(text, category):
    """ "Delete mine" and "mine got done" put the writer among those captured; "the client is"
    a person in a medical state; "sry" opens a chat line whose subject is the writer."""
    assert category in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Our eldest is making her First Communion in May, so I'm off that Saturday.", RELIGION),
        ("Evenings this week are the novena, so I'll answer in the mornings.", RELIGION),
        ("I keep the fast on Ekadashi, please no lunch meetings that day.", RELIGION),
        ("Mass tonight, then I'll send the proofs.", RELIGION),
        ("Karva Chauth tomorrow so I'm not eating till the moon's up.", RELIGION),
        ("Father Tomasz will sign off the order.", RELIGION),
        ("Please copy in Revd Alison Marsh on the invoices.", RELIGION),
        ("My cousin's away on an LDS mission till next summer.", RELIGION),
        ("Since the burn on his left hand he can't use the fingerprint login.", "health"),
        ("Jo had a scare at the twenty-week scan.", "health"),
        ("New here, hello all. Four weeks on sertraline and the fog is lifting.", "health"),
        ("The new turnstile takes a scan of my eyeball every morning.", "biometric"),
        ("The cameras picked him out by the way he walks.", "biometric"),
        ("Just out after a two-year stretch and looking for work.", "criminal_history"),
        ("I voted Yes in 2014.", "political_opinions"),
        ("My mum's people are from Antigua.", "racial_or_ethnic_origin"),
    ],
)
def test_rites_titles_treatments_and_captures_said_without_the_usual_words(text, category):
    """A rite someone "makes" (the trade blocker "making" once hid it), a cleric's title before
    a name, fasts and devotions by name, a burn or a pregnancy scan, a time on a medicine, an
    eyeball scanned, a gait matched, a stretch inside, the 2014 referendum, a parent's people."""
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "sending prayers and good vibes to the on-call team tonight",
        "thoughts and prayers for whoever has to fix the staging server",
        "ngl the new reporting page is sick, saved me ages",
        "Please check my emails for colour-blind accessibility before Friday.",
        "Honestly I'm hooked up to the projector all afternoon.",
        "does the app do the face unlock thing yet, my boss keeps asking",
        "I'm Sam Bishop from Bishop & Sons Plumbing.",
    ],
)
def test_well_wishes_slang_design_checks_and_firm_names_are_not_disclosures(text):
    assert found(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        "Father Christmas is booked for the staff party.",
        "My Father Dennis ran the shop before me.",
        "I drive an 18-month stretch of roadworks every day.",
        "Is the clinic hooked up to the new booking system yet?",
        "We curate playlists for gyms and I curate them myself.",
    ],
)
def test_the_title_and_stretch_patterns_stop_where_their_sense_does(text):
    """A guard on the patterns themselves: a festive or family Father, and a stretch of road."""
    assert found(text) == set()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        (
            "Good interview. Disclosed epilepsy, needs a quiet room to rest after a seizure - fine "
            "for the role.",
            "health",
        ),
        ("the new door at the surgery scans ma hand veins noo", "biometric"),
    ],
)
def test_a_note_that_reports_a_disclosure_and_scots_ma_are_about_someone(text, category):
    """A staff note's "Disclosed ..." leaves out its subject, the contact; "ma" is Scots "my"."""
    assert category in found(text)


def test_a_dating_scan_is_a_pregnancy_not_a_date():
    assert found("She had her dating scan on Monday, so the call moves to Tuesday.") == {"health"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # said the way people say it, without the textbook word
        ("My son is on the spectrum, so please warn us before the fire drill.", "health"),
        ("My viral load is undetectable now.", "health"),
        ("He's been sectioned twice.", "health"),
        ("I lost my leg in Afghanistan.", "health"),
        ("I've been clean for three years.", "health"),
        ("The rheumatologist confirmed RA, so I'm stopping my classes.", "health"),
        ("As a dad of two, my husband and I are always busy.", "sex_life_or_orientation"),
        ("Me and my wife are both lasses.", "sex_life_or_orientation"),
        ("We're a two-dad family.", "sex_life_or_orientation"),
        ("He was inside for two years.", "criminal_history"),
        ("He'll be inside for 18 months from next week.", "criminal_history"),
        ("I've got previous, so I doubt they'll take me.", "criminal_history"),
        ("He got sent down for three years.", "criminal_history"),
        ("I voted to leave the EU.", "political_opinions"),
        ("I put my cross in Yes.", "political_opinions"),
        ("I'm a paid up labour member.", "political_opinions"),
        ("I can't work after Friday sunset.", RELIGION),
        ("My 22andMe results came in.", "genetic"),
        ("The app is making us register a thumb, nobody asked for my consent.", "biometric"),
    ],
)
def test_indirect_wording_of_every_kind_is_found(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("She's on probation at work until her six-month review.", "criminal_history"),
        ("I defend people accused of crimes for a living.", "criminal_history"),
        ("The Northern line is shut by a walkout, so I'm at home.", "trade_union_membership"),
        ("Trains were cancelled because of the strike, sorry I'm late.", "trade_union_membership"),
        ("I'm going straight to the venue from work.", "sex_life_or_orientation"),
        ("We were all sick with laughing.", "health"),
        ("Month-end reconciliation is a migraine every single time.", "health"),
        ("I work in mental health and love it.", "health"),
        ("My first language is Polish.", "racial_or_ethnic_origin"),
        ("Our new office is next to the bakery on Green Lane, I'm told.", "political_opinions"),
        ("Ever since I dropped it, the fingerprint pad on my keyboard does nothing.", "biometric"),
    ],
)
def test_the_same_words_in_an_everyday_sense_are_not_disclosures(text, category):
    assert category not in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # known by a body part with no "my": the system, not a person, is the subject
        ("The helpline knows me by voice now, which I never asked for.", "biometric"),
        # a device named by its body part, and a chat line that leaves out its "my"
        ("The warehouse has a palm thing by the door and I use it every shift.", "biometric"),
        ("new job has a fingerprint machine for clocking in", "biometric"),
        # a signature's dynamics kept and compared, and typing rhythm checked
        ("The courier's pad said my signature did not match the stored template.", "biometric"),
        ("Your courier app stores how I sign, I never agreed.", "biometric"),
        ("The keystroke check in the exam software flagged me twice.", "biometric"),
        # treatments and devices said by their everyday names
        ("Typing is slow with my wrist splint on.", "health"),
        ("He has a peg feed at noon, so lunch has to be quiet.", "health"),
        ("Our daughter is tube-fed overnight.", "health"),
        ("His ICD fired twice last month.", "health"),
        ("My catheter needs changing at 2, so I'll be offline.", "health"),
        ("They lasered my retina on Friday.", "health"),
        ("My OT came round to assess the kitchen.", "health"),
    ],
)
def test_capture_by_voice_signature_or_a_palm_thing_and_treatments_by_their_names(text, category):
    """Round 64: what a system knows someone by, and health said without a condition's name."""
    assert category in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Anna Bishop-Jones called about the invoice.", RELIGION),
        ("Priest-Jones, Anna - import split her surname.", RELIGION),
        ("Surname is Christian, first name Mary.", RELIGION),
        ("Last name: Bishop, first name: Carol.", RELIGION),
        ("Our fingerprint for the SSH key changed after the rebuild.", "biometric"),
        ("We do not use any biometric technology at our venues.", "biometric"),
        ("His fingerprint on the signing key is in the README.", "biometric"),
        ("I'm organising the staff flu-jab clinic on Thursday.", "health"),
    ],
)
def test_surnames_key_fingerprints_policies_and_a_jab_clinic_run_are_not_disclosures(
    text, category
):
    """Round 64: a surname, a certificate's fingerprint, an organisation's own statement that it
    uses no biometrics and a vaccination clinic someone organises for others."""
    assert category not in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("My OT hours are paid monthly.", "health"),
        ("My OT is paid at time and a half.", "health"),
        ("We're a Christian-Muslim couple, so both holidays matter to us.", RELIGION),
        ("My fingerprint is on the file for the door, I never agreed.", "biometric"),
    ],
)
def test_the_round_64_rules_stop_where_their_sense_does(text, category):
    """Overtime is not an occupational therapist, "Christian-" opening a compound is not a
    surname, and a person's own fingerprint is not a certificate's."""
    assert (category in found(text)) == (category != "health")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("We had sex for the first time last month and now she won't text back.", SEX),
        ("My wife and I have sex less often since the baby.", SEX),
        ("Our sex lives changed completely after his accident.", SEX),
        ("The consultant said my brother's bi-polar disorder is under control.", "health"),
    ],
)
def test_sex_said_plainly_and_bipolar_written_with_a_hyphen_are_found(text, category):
    """Round 65 (text by other people): having sex said of people, "sex lives", and "bi-polar"."""
    assert category in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("When I lie down my mind races with to-do lists.", "racial_or_ethnic_origin"),
        ("Her heart was racing before the pitch, she said.", "racial_or_ethnic_origin"),
        ("I worked twelve hours straight on the launch.", SEX),
        ("We've hit target three months straight, drinks on me.", SEX),
        ("He's been dating someone from the climbing club.", SEX),
        ("I started dating this guy I met at the bakery.", SEX),
        ("Do you have sex ed resources for the school newsletter?", SEX),
        ("My partner and I are looking for couples counselling near Leeds.", "health"),
        ("We booked marriage counseling through the church.", "health"),
        ("I think I'm stressing everyone out with all my reminder emails.", "health"),
    ],
)
def test_a_racing_mind_a_run_of_days_dating_someone_and_couples_counselling_are_not_disclosures(
    text, category
):
    """Round 65: the verb "race", "straight" after a span of time, dating someone whose sex the
    text does not give, a relationship's counselling and putting others under stress."""
    assert category not in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I've gone to a couple therapy sessions and still feel nervous.", "health"),
        ("I've been on Grindr for years, it's where I met my boyfriend.", SEX),
        ("She's dating a woman from the marketing team.", SEX),
        ("My husband and I are having marriage counselling after my breakdown.", "health"),
    ],
)
def test_the_round_65_rules_stop_where_their_sense_does(text, category):
    """A couple (of) therapy sessions is therapy, an app used for years and a same-sex partner
    stay, and a breakdown said beside marriage counselling is still health."""
    assert category in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("The fertility clinic cancelled my transfer again, so I'm free Thursday.", "health"),
        ("Lost a stone on Mounjaro since the summer, asked for new headshots.", "health"),
        ("Takes warfarin and bruises easily, so mind the stage steps.", "health"),
        ("I take communion at the early service, so any time from ten is fine.", RELIGION),
        ("My parents are members of the Society of Friends and won't sign oaths.", RELIGION),
        (
            "My daughter's school uses a face-matching app at pick-up; I have not agreed to my own"
            " photo being used.",
            "biometric",
        ),
        ("Please supply the voiceprint your phone line made of me when I enrolled.", "biometric"),
        ("Uses the voice check on the helpline, asked if we store a copy of it.", "biometric"),
        ("They track the way we walk on the cameras to identify staff at the depot.", "biometric"),
        (
            "The bank app wanted a turn-your-head-left clip before it opened my account.",
            "biometric",
        ),
        ("He made me sign on his tablet and compared the signature with my last one.", "biometric"),
        ("The app flagged her as a 'known shoplifter' at the self-checkout.", "criminal_history"),
    ],
)
def test_round_66_indirect_wording_is_found(text, category):
    """Round 66: a clinic moving someone's appointment, a note that opens with what the contact
    lost or takes, taking communion, the Society of Friends, consent not given in the perfect or
    never asked, a capture made from someone, a gait watched to tell people apart, a hyphenated
    liveness gesture, a signature compared with an earlier one, a "known" shoplifter."""
    assert category in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("The dentist's surgery we work for wants the recall template changed.", "health"),
        ("That legacy macro is a cancer in our workflow, honestly.", "health"),
        ("The sick-leave column in our HR template sits in the wrong place.", "health"),
        (
            "I photograph weddings at mosques and churches across Yorkshire for my clients.",
            RELIGION,
        ),
        ("Stewards at the stadium gate checked my bag for ten minutes.", "trade_union_membership"),
        ("I could hardly keep a straight face during his pitch.", SEX),
        ("Lost property: a lilac iris-print scarf, no name on it.", "biometric"),
    ],
)
def test_round_66_everyday_senses_are_not_disclosures(text, category):
    """Round 66: a practice as a customer, a disease as a figure for a thing, a leave field, places
    of worship as a trade's venues, an event's stewards, a straight face, and a heading that opens
    with a word a note's subjectless sentence could open with."""
    assert category not in found(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("We go to different churches most Sundays, wherever the kids' friends are.", RELIGION),
        (
            "I'm the union steward at the depot and deal with the rota disputes.",
            "trade_union_membership",
        ),
        ("I had cancer in my breast two years ago and I'm clear now.", "health"),
    ],
)
def test_the_round_66_rules_stop_where_their_sense_does(text, category):
    """Worship at several churches, a union's steward and a cancer in the body still count."""
    assert category in found(text)
