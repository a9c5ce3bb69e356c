# ruff: noqa: E501  (patient-education prose: one paragraph per line, as it is edited and translated)
"""The seeded education library and consent templates, in English and French (R-EDU, R-AE, R-COST, R-EVID,
R-ALT, R-REG, R-PRE-*). Written for patients from the seed articles (../shared/seeds/000–004) and
domain.md; facts from the literature are marked in each version's ``source``. Clinics edit copies of these
(``clinic`` set); the seeded rows are never changed in place — corrections come as new versions.

Placeholders filled from the clinic's data when shown: {clinic_name}, {clinic_phone}, {price_per_session}."""

from __future__ import annotations

from typing import Any

S000 = "seed 000_2edeac59aef879af.txt"
S001 = "seed 001_5e54515e35d4687b.txt"
S002 = "seed 002_31eeec912ef0d88d.txt"
S003 = "seed 003_f92b52b170801ca0.txt"
S004 = "seed 004_99daaf86bc4fb4d2.txt"
LIT_NTM = "literature: non-tuberculous mycobacterial infections appear 1–12 weeks after injection"
LIT_FR = "literature: France, decree 2011-382, upheld by the Conseil d'État (2012)"
LIT_US = "literature: FDA — the procedure is not approved; compounded PC/DC are unapproved drugs"

FAT = ("localized-fat", "weight-loss")
SKIN = ("rejuvenation", "wrinkles")

# (topic, indications ("" = every indication), source, {language: (title, body)})
ARTICLES: list[tuple[str, tuple[str, ...], str, dict[str, tuple[str, str]]]] = [
    (
        "what-is",
        ("",),
        f"{S000}; {S001}; {S003}; {S004}",
        {
            "en": (
                "What mesotherapy is",
                """Mesotherapy is a technique in which a practitioner gives many small injections into the middle layer of the skin (the mesoderm). The mixture injected can contain vitamins, minerals, amino acids, plant extracts, enzymes, hormones or prescription medicines. The French doctor Michel Pistor developed it in 1952, at first to relieve pain.

Today it is used to:
- reduce small areas of stubborn fat (stomach, love handles, hips, thighs, buttocks, arms, jaw and chin)
- improve the look of cellulite
- soften fine lines and wrinkles, tighten loose skin and refresh the complexion
- lighten pigmented skin
- treat some forms of hair loss (alopecia)

There is no standard formula: each clinic makes up its own mixtures, so two clinics may give quite different treatments. At {clinic_name} your practitioner tells you exactly what is in your formula before you sign the consent.

Mesotherapy is not a way to lose a lot of weight. It works best, if at all, for small amounts of stubborn fat in people at a stable weight, as a supplement to a healthy diet and exercise. The injections are given by a licensed doctor or nurse.""",
            ),
            "fr": (
                "Qu'est-ce que la mésothérapie ?",
                """La mésothérapie consiste à faire de nombreuses petites injections dans la couche moyenne de la peau (le mésoderme). Le mélange injecté peut contenir des vitamines, des minéraux, des acides aminés, des extraits de plantes, des enzymes, des hormones ou des médicaments sur ordonnance. Le médecin français Michel Pistor l'a mise au point en 1952, d'abord pour soulager la douleur.

On l'utilise aujourd'hui pour :
- réduire de petites zones de graisse rebelle (ventre, poignées d'amour, hanches, cuisses, fesses, bras, mâchoire et menton)
- atténuer l'aspect de la cellulite
- estomper les rides fines, raffermir la peau relâchée et raviver le teint
- éclaircir une peau pigmentée
- traiter certaines formes de chute de cheveux (alopécie)

Il n'existe pas de formule standard : chaque cabinet compose ses propres mélanges, et deux cabinets peuvent proposer des traitements très différents. À {clinic_name}, votre praticien vous indique précisément la composition de votre formule avant que vous signiez le consentement.

La mésothérapie ne fait pas perdre beaucoup de poids. Elle convient au mieux, si elle agit, à de petites quantités de graisse rebelle chez une personne au poids stable, en complément d'une alimentation saine et d'une activité physique. Les injections sont faites par un médecin ou un infirmier diplômé.""",
            ),
        },
    ),
    (
        "what-to-expect",
        ("",),
        f"{S001}; {S003}; {S004}",
        {
            "en": (
                "What to expect in a session",
                """Before the first session you meet your practitioner. They check that the treatment suits you — your health, your medicines, pregnancy or breastfeeding, allergies — and what you can reasonably expect from it.

At each session:
- numbing cream may be put on the skin about 30 minutes before; it is optional
- the practitioner uses a very fine, short needle, sometimes fitted to a mechanical injector that gives many injections in a row
- the injections go 1 to 4 mm deep depending on what is treated (deeper for fat), a tiny drop each time
- you may feel brief stinging or burning

No bandage is needed. Most people go back to their usual activities straight away; some take a day off because of swelling or soreness at the injection sites.""",
            ),
            "fr": (
                "Comment se passe une séance",
                """Avant la première séance, vous rencontrez votre praticien. Il vérifie que le traitement vous convient — votre santé, vos médicaments, une grossesse ou un allaitement, vos allergies — et ce que vous pouvez raisonnablement en attendre.

À chaque séance :
- une crème anesthésiante peut être appliquée sur la peau environ 30 minutes avant ; elle est facultative
- le praticien utilise une aiguille très fine et courte, parfois montée sur un injecteur mécanique qui enchaîne de nombreuses injections
- les injections vont de 1 à 4 mm de profondeur selon ce qui est traité (plus profond pour la graisse), une toute petite goutte à chaque fois
- vous pouvez ressentir une brève sensation de piqûre ou de brûlure

Aucun pansement n'est nécessaire. La plupart des personnes reprennent aussitôt leurs activités ; certaines prennent un jour de repos à cause d'un gonflement ou d'une sensibilité aux points d'injection.""",
            ),
        },
    ),
    (
        "what-to-expect",
        ("cellulite",),
        f"{S000}; {S003}",
        {
            "en": (
                "What to expect: mesotherapy for cellulite",
                """Cellulite is hard to treat, and mesotherapy alone rarely gives good results. Two formulas may be used in the same session: one aimed at the fat, and one at the fibrous bands that pull the skin down.

At each session numbing cream may be applied about 30 minutes before (optional), and the practitioner gives many tiny injections with a very fine needle or a mechanical injector. Bruising is common on the thighs and buttocks; the next session waits until it has gone.

Mesotherapy is often combined with a dedicated cellulite treatment such as Velasmooth, which also takes a series of sessions over several weeks.""",
            ),
            "fr": (
                "Comment se passe une séance : la mésothérapie pour la cellulite",
                """La cellulite est difficile à traiter, et la mésothérapie seule donne rarement de bons résultats. Deux formules peuvent être utilisées pendant la même séance : l'une vise la graisse, l'autre les travées fibreuses qui tirent la peau vers le bas.

À chaque séance, une crème anesthésiante peut être appliquée environ 30 minutes avant (facultatif), et le praticien fait de nombreuses petites injections avec une aiguille très fine ou un injecteur mécanique. Les bleus sont fréquents sur les cuisses et les fesses ; la séance suivante attend qu'ils aient disparu.

La mésothérapie est souvent associée à un traitement dédié à la cellulite comme Velasmooth, qui demande lui aussi une série de séances sur plusieurs semaines.""",
            ),
        },
    ),
    (
        "sessions",
        ("",),
        f"{S000}; {S002}; {S003}; {S004}",
        {
            "en": (
                "How many sessions, and how often",
                """Mesotherapy is a series of sessions, not a single treatment. Most people need between 3 and 15 sessions; for fat, 5 to 7 on average, and sometimes 10 or more.

At first, sessions are usually 7 to 10 days apart. When the skin improves they are spaced out to every two weeks, then to once a month. Some people have occasional maintenance sessions afterwards.

A session is never done before all the bruising from the previous one has gone. Your treatment plan gives the number of sessions planned for you, and your practitioner reviews it as you go.""",
            ),
            "fr": (
                "Combien de séances, et à quel rythme",
                """La mésothérapie est une série de séances, pas un traitement unique. La plupart des personnes ont besoin de 3 à 15 séances ; pour la graisse, 5 à 7 en moyenne, et parfois 10 ou plus.

Au début, les séances ont lieu en général tous les 7 à 10 jours. Quand la peau s'améliore, elles sont espacées toutes les deux semaines, puis une fois par mois. Certaines personnes ont ensuite des séances d'entretien de temps en temps.

Une séance n'est jamais faite avant que tous les bleus de la précédente aient disparu. Votre plan de traitement indique le nombre de séances prévues pour vous, et votre praticien le revoit au fil du traitement.""",
            ),
        },
    ),
    (
        "preparing",
        ("",),
        f"{S003}; {S004}",
        {
            "en": (
                "Preparing for a session",
                """- For 7 days before each session, do not take aspirin or other anti-inflammatory painkillers (NSAIDs) such as ibuprofen or naproxen: they increase bleeding and bruising. Ask the clinic which painkiller you can take instead.
- Tell the clinic about every medicine you take, especially blood thinners, and about any pregnancy, breastfeeding, allergy or skin infection.
- If you would like numbing cream, it is applied about 30 minutes before the injections. It is optional.
- Come with clean skin, without make-up or cream on the area to be treated.
- Wear loose, comfortable clothing over that area.""",
            ),
            "fr": (
                "Se préparer à une séance",
                """- Pendant les 7 jours qui précèdent chaque séance, ne prenez pas d'aspirine ni d'autres anti-inflammatoires (AINS) comme l'ibuprofène ou le naproxène : ils augmentent les saignements et les bleus. Demandez au cabinet quel antidouleur vous pouvez prendre à la place.
- Signalez au cabinet tous les médicaments que vous prenez, surtout les anticoagulants, ainsi qu'une grossesse, un allaitement, une allergie ou une infection de la peau.
- Si vous souhaitez une crème anesthésiante, elle est appliquée environ 30 minutes avant les injections. Elle est facultative.
- Venez la peau propre, sans maquillage ni crème sur la zone à traiter.
- Portez des vêtements amples et confortables sur cette zone.""",
            ),
        },
    ),
    (
        "aftercare",
        ("",),
        f"{S001}; {S003}; {S004}",
        {
            "en": (
                "After a session",
                """- Small bruises are common and fade within a few days. Arnica or an antibiotic cream may be prescribed: use them as directed.
- Mild swelling and small painless bumps can last a day or two.
- Avoid strenuous exercise and wear loose clothing for the first few days.
- Some people need a day off: plan a quiet day if you can.
- Do not take aspirin or other NSAIDs in the 7 days before your next session.
- Your next session waits until all bruising has gone.

If anything worries you, call {clinic_name} on {clinic_phone}.""",
            ),
            "fr": (
                "Après une séance",
                """- Les petits bleus sont fréquents et s'estompent en quelques jours. De l'arnica ou une crème antibiotique peuvent vous être prescrits : utilisez-les comme indiqué.
- Un léger gonflement et de petites bosses indolores peuvent durer un jour ou deux.
- Évitez les efforts physiques intenses et portez des vêtements amples les premiers jours.
- Certaines personnes ont besoin d'un jour de repos : prévoyez une journée calme si possible.
- Ne prenez pas d'aspirine ni d'autres AINS pendant les 7 jours qui précèdent la séance suivante.
- La séance suivante attend que tous les bleus aient disparu.

Au moindre doute, appelez {clinic_name} au {clinic_phone}.""",
            ),
        },
    ),
    (
        "side-effects",
        ("",),
        f"{S001}; {S003}; {S004}; {LIT_NTM}",
        {
            "en": (
                "Side effects, and when to call the clinic",
                """Side effects reported after mesotherapy:
- bruising, swelling and small bumps at the injection sites, for a few days
- brief stinging or burning during the injections
- slight itching, redness, sensitivity or pain
- numbness of the treated skin, which clears in 3 to 10 days
- darker patches of skin, which are temporary and clear on their own
- nausea or a rash
- infection and scars, which are rare

Call {clinic_name} on {clinic_phone} straight away if the area becomes more painful, red, warm or swollen, if pus, lumps or sores appear, or if you have a fever. Infections after injections can appear up to 12 weeks later, so call even weeks after your last session.

Infections have been traced to unsanitary practice: injections must be given by a licensed practitioner, in clean conditions, with single-use material.""",
            ),
            "fr": (
                "Effets indésirables, et quand appeler le cabinet",
                """Effets indésirables signalés après une mésothérapie :
- bleus, gonflement et petites bosses aux points d'injection, pendant quelques jours
- brève sensation de piqûre ou de brûlure pendant les injections
- légères démangeaisons, rougeurs, sensibilité ou douleur
- engourdissement de la peau traitée, qui disparaît en 3 à 10 jours
- taches plus foncées sur la peau, temporaires, qui partent d'elles-mêmes
- nausées ou éruption cutanée
- infection et cicatrices, qui sont rares

Appelez {clinic_name} au {clinic_phone} sans attendre si la zone devient plus douloureuse, rouge, chaude ou gonflée, si du pus, des nodules ou des plaies apparaissent, ou si vous avez de la fièvre. Une infection après des injections peut apparaître jusqu'à 12 semaines plus tard : appelez même des semaines après votre dernière séance.

Des infections ont été liées à des pratiques non stériles : les injections doivent être faites par un praticien diplômé, dans des conditions d'hygiène strictes, avec du matériel à usage unique.""",
            ),
        },
    ),
    (
        "costs",
        ("",),
        f"{S003}; {S004}",
        {
            "en": (
                "Costs and insurance",
                """The cost depends on the treatment and on how many sessions you need. At {clinic_name}, one session costs {price_per_session}. Your consent and your quote show the total for the sessions in your plan, and for the fewest and the most sessions the protocol foresees.

Published prices in the United States are between $250 and $600 per session, and several sessions are needed, so the total adds up. Always ask what the exact treatment will cost, including any additional procedure.

Mesotherapy is cosmetic and not medically necessary, so health insurance usually does not cover it.

For comparison, liposuction cost about $3,200 on average in the United States in 2016, with up to six weeks of recovery.""",
            ),
            "fr": (
                "Coût et remboursement",
                """Le coût dépend du traitement et du nombre de séances nécessaires. À {clinic_name}, une séance coûte {price_per_session}. Votre consentement et votre devis indiquent le total pour les séances de votre plan, ainsi que pour le plus petit et le plus grand nombre de séances prévus par le protocole.

Aux États-Unis, les prix publiés vont de 250 à 600 dollars la séance, et plusieurs séances sont nécessaires : le total monte vite. Demandez toujours le coût exact du traitement, y compris celui d'éventuels actes complémentaires.

La mésothérapie est un acte esthétique, non médicalement nécessaire : elle n'est en général pas remboursée par l'assurance maladie ni par les mutuelles.

À titre de comparaison, une liposuccion coûtait en moyenne 3 200 dollars aux États-Unis en 2016, avec jusqu'à six semaines de récupération.""",
            ),
        },
    ),
    (
        "evidence",
        ("",),
        f"{S002}; {S004}",
        {
            "en": (
                "What the evidence says",
                """It is hard to say whether mesotherapy works: many different mixtures and methods are used, and few studies have tested them — most of them small.

- A 2012 study of 6 people treated for six months found no real improvement in wrinkles.
- A 2008 study of 20 women treated for body contouring found no reduction in thigh size.
- The American Society of Plastic Surgeons does not recommend mesotherapy or injection lipolysis for removing fat: there is not enough research to confirm that they work.
- In the United States mesotherapy is considered experimental: its safety, risks and benefits are not fully understood. The procedure is not FDA-approved; approved ingredients are used off-label.
- For hair loss, only finasteride and minoxidil have any evidence that they work.

Many of the studies looked at mesotherapy for pain, not for cosmetic use. Results vary from person to person. The clinic measures your progress (for example circumferences, weight and photos) so that you and your practitioner can see honestly whether it works for you.""",
            ),
            "fr": (
                "Ce que disent les études",
                """Il est difficile de dire si la mésothérapie est efficace : les mélanges et les méthodes varient beaucoup, et peu d'études les ont évalués — la plupart sur de petits effectifs.

- Une étude de 2012 portant sur 6 personnes traitées pendant six mois n'a montré aucune amélioration réelle des rides.
- Une étude de 2008 portant sur 20 femmes traitées pour remodeler la silhouette n'a montré aucune diminution du tour de cuisse.
- La Société américaine de chirurgie plastique (ASPS) ne recommande ni la mésothérapie ni la lipolyse par injection pour éliminer la graisse : les études sont insuffisantes pour confirmer leur efficacité.
- Aux États-Unis, la mésothérapie est considérée comme expérimentale : sa sécurité, ses risques et ses bénéfices ne sont pas entièrement connus. L'acte n'est pas approuvé par la FDA ; des ingrédients approuvés y sont utilisés hors indication.
- Pour la chute de cheveux, seuls le finastéride et le minoxidil ont un début de preuve d'efficacité.

Beaucoup d'études portaient sur la mésothérapie contre la douleur, non sur l'usage esthétique. Les résultats varient d'une personne à l'autre. Le cabinet mesure vos progrès (par exemple tours de taille, poids et photos) pour que vous et votre praticien puissiez juger honnêtement si le traitement vous réussit.""",
            ),
        },
    ),
    (
        "evidence",
        FAT,
        f"{S000}; {S002}; {S004}",
        {
            "en": (
                "What the evidence says about mesotherapy for fat",
                """It is not clear how well mesotherapy removes fat: there has not been enough research, and methods differ from one clinic to the next.

- A 2008 study of 20 women treated for body contouring found no reduction in thigh size.
- The American Society of Plastic Surgeons does not recommend mesotherapy or injection lipolysis for removing fat: there is not enough research to confirm that they work.
- In the United States mesotherapy is considered experimental, and the procedure is not FDA-approved.

Some patients report losing inches and pounds during a series, usually together with diet and exercise. That is why the clinic measures your circumferences at fixed points and your weight before and during the treatment: you will see honestly whether it works for you.""",
            ),
            "fr": (
                "Ce que disent les études sur la mésothérapie pour la graisse",
                """On ne sait pas bien si la mésothérapie élimine la graisse : les études sont insuffisantes, et les méthodes diffèrent d'un cabinet à l'autre.

- Une étude de 2008 portant sur 20 femmes traitées pour remodeler la silhouette n'a montré aucune diminution du tour de cuisse.
- La Société américaine de chirurgie plastique (ASPS) ne recommande ni la mésothérapie ni la lipolyse par injection pour éliminer la graisse : les études sont insuffisantes pour confirmer leur efficacité.
- Aux États-Unis, la mésothérapie est considérée comme expérimentale, et l'acte n'est pas approuvé par la FDA.

Certaines personnes disent perdre des centimètres et des kilos pendant une série, en général avec une alimentation adaptée et de l'exercice. C'est pourquoi le cabinet mesure vos tours à des repères fixes et votre poids avant et pendant le traitement : vous verrez honnêtement si le traitement vous réussit.""",
            ),
        },
    ),
    (
        "evidence",
        SKIN,
        f"{S004}",
        {
            "en": (
                "What the evidence says about mesotherapy for the skin",
                """The research on mesotherapy has not shown much benefit for skin rejuvenation.

- A 2012 study of 6 people treated for six months found no real improvement in wrinkles.
- Few studies exist, and most of them are small; the mixtures used differ from one clinic to the next.
- In the United States mesotherapy is considered experimental, and the procedure is not FDA-approved.

Your practitioner takes standard photos and rates your skin on a recognised scale before and during the treatment, so that you can both judge the result honestly.""",
            ),
            "fr": (
                "Ce que disent les études sur la mésothérapie pour la peau",
                """Les études sur la mésothérapie n'ont pas montré de bénéfice notable pour le rajeunissement de la peau.

- Une étude de 2012 portant sur 6 personnes traitées pendant six mois n'a montré aucune amélioration réelle des rides.
- Les études sont peu nombreuses, et la plupart portent sur de petits effectifs ; les mélanges utilisés diffèrent d'un cabinet à l'autre.
- Aux États-Unis, la mésothérapie est considérée comme expérimentale, et l'acte n'est pas approuvé par la FDA.

Votre praticien prend des photos standardisées et évalue votre peau sur une échelle reconnue avant et pendant le traitement, pour que vous puissiez tous deux juger honnêtement du résultat.""",
            ),
        },
    ),
    (
        "evidence",
        ("hair-loss",),
        f"{S001}; {S004}",
        {
            "en": (
                "What the evidence says about mesotherapy for hair loss",
                """There is little evidence that mesotherapy works for hair loss. Most of the substances injected have not been shown in studies to regrow hair; only finasteride and minoxidil have any evidence that they work.

Claims that mesotherapy corrects hormone imbalances around the hair follicle, feeds the hair or improves circulation have not been proven. Your practitioner measures hair density in a marked area and takes standard photos before and during the treatment, so that you can both judge the result honestly.""",
            ),
            "fr": (
                "Ce que disent les études sur la mésothérapie pour la chute de cheveux",
                """Peu d'éléments montrent que la mésothérapie agit sur la chute de cheveux. La plupart des substances injectées n'ont pas démontré dans des études qu'elles font repousser les cheveux ; seuls le finastéride et le minoxidil ont un début de preuve d'efficacité.

Les affirmations selon lesquelles la mésothérapie corrigerait un déséquilibre hormonal autour du follicule, nourrirait le cheveu ou améliorerait la circulation ne sont pas prouvées. Votre praticien mesure la densité des cheveux sur une zone repérée et prend des photos standardisées avant et pendant le traitement, pour que vous puissiez tous deux juger honnêtement du résultat.""",
            ),
        },
    ),
    (
        "alternatives",
        ("",),
        f"{S000}; {S001}; {S003}; {S004}",
        {
            "en": (
                "Alternatives",
                """You can choose not to have mesotherapy. Depending on your goal, other options include:
- Diet and exercise, which mesotherapy can only supplement.
- Liposuction: surgery under anaesthesia that removes fat permanently. It is effective, but recovery can take up to six weeks, and it has risks such as nerve and blood vessel damage, irregular skin contours, burns and infection.
- Laser liposuction (for example SmartLipo), for stubborn fat that does not respond to mesotherapy; a few days of downtime.
- Injection lipolysis: phosphatidylcholine and deoxycholate injected into the fat. As with mesotherapy there is very little evidence that it works, and some countries ban it for aesthetic use.
- For cellulite, a dedicated device such as Velasmooth, alone or combined with mesotherapy.
- For wrinkles, botulinum toxin (Botox) or a filler such as Restylane.
- For hair loss, topical minoxidil, oral finasteride (men only) or a hair transplant.

Ask your practitioner which of these suit you, and what they cost.""",
            ),
            "fr": (
                "Les alternatives",
                """Vous pouvez choisir de ne pas faire de mésothérapie. Selon votre objectif, d'autres possibilités existent :
- Une alimentation adaptée et de l'exercice, que la mésothérapie ne peut que compléter.
- La liposuccion : une chirurgie sous anesthésie qui retire la graisse définitivement. Elle est efficace, mais la récupération peut prendre jusqu'à six semaines, avec des risques comme des lésions des nerfs et des vaisseaux, des irrégularités de la peau, des brûlures et des infections.
- La liposuccion au laser (par exemple SmartLipo), pour une graisse rebelle qui ne répond pas à la mésothérapie ; quelques jours d'arrêt.
- La lipolyse par injection : de la phosphatidylcholine et du désoxycholate injectés dans la graisse. Comme pour la mésothérapie, très peu d'éléments montrent qu'elle agit, et certains pays l'interdisent à visée esthétique.
- Pour la cellulite, un appareil dédié comme Velasmooth, seul ou associé à la mésothérapie.
- Pour les rides, la toxine botulique (Botox) ou un produit de comblement comme Restylane.
- Pour la chute de cheveux, le minoxidil en lotion, le finastéride par voie orale (hommes uniquement) ou une greffe de cheveux.

Demandez à votre praticien lesquelles vous conviennent, et ce qu'elles coûtent.""",
            ),
        },
    ),
    (
        "alternatives",
        FAT,
        f"{S000}; {S004}",
        {
            "en": (
                "Alternatives to mesotherapy for fat",
                """You can choose not to have mesotherapy. For stubborn fat, other options include:
- Diet and exercise: mesotherapy only supplements them, and works best, if at all, at a stable weight.
- Liposuction: surgery under anaesthesia that removes fat permanently from areas like the stomach, thighs and back. It is effective, but recovery can take up to six weeks, it has risks (nerve and blood vessel damage, irregular skin contours, burns, infection) and it costs more — about $3,200 on average in the United States in 2016.
- Laser liposuction (for example SmartLipo), for fat that does not respond to mesotherapy; a few days of downtime.
- Injection lipolysis (phosphatidylcholine and deoxycholate): similar to mesotherapy, with very little evidence that it works; banned for aesthetic use in France.
- For fat under the chin, deoxycholic acid (Kybella), approved in the United States for that use only.""",
            ),
            "fr": (
                "Les alternatives à la mésothérapie pour la graisse",
                """Vous pouvez choisir de ne pas faire de mésothérapie. Pour une graisse rebelle, d'autres possibilités existent :
- Une alimentation adaptée et de l'exercice : la mésothérapie ne fait que les compléter, et convient au mieux, si elle agit, à un poids stable.
- La liposuccion : une chirurgie sous anesthésie qui retire définitivement la graisse du ventre, des cuisses ou du dos. Elle est efficace, mais la récupération peut prendre jusqu'à six semaines, elle comporte des risques (lésions des nerfs et des vaisseaux, irrégularités de la peau, brûlures, infection) et elle coûte plus cher — environ 3 200 dollars en moyenne aux États-Unis en 2016.
- La liposuccion au laser (par exemple SmartLipo), pour une graisse qui ne répond pas à la mésothérapie ; quelques jours d'arrêt.
- La lipolyse par injection (phosphatidylcholine et désoxycholate) : proche de la mésothérapie, avec très peu de preuves d'efficacité ; interdite à visée esthétique en France.
- Pour la graisse sous le menton, l'acide désoxycholique (Kybella), approuvé aux États-Unis pour cet usage uniquement.""",
            ),
        },
    ),
    (
        "alternatives",
        ("cellulite",),
        f"{S000}; {S003}",
        {
            "en": (
                "Alternatives to mesotherapy for cellulite",
                """You can choose not to have mesotherapy. Mesotherapy alone rarely gives good results on cellulite. Other options include:
- A dedicated cellulite treatment such as Velasmooth, a non-invasive series over several weeks, often combined with mesotherapy.
- Radiofrequency skin tightening.
- Diet and exercise, which help both fat and the look of the skin.""",
            ),
            "fr": (
                "Les alternatives à la mésothérapie pour la cellulite",
                """Vous pouvez choisir de ne pas faire de mésothérapie. Seule, la mésothérapie donne rarement de bons résultats sur la cellulite. D'autres possibilités existent :
- Un traitement dédié comme Velasmooth, une série non invasive sur plusieurs semaines, souvent associée à la mésothérapie.
- La radiofréquence pour raffermir la peau.
- Une alimentation adaptée et de l'exercice, qui agissent sur la graisse et l'aspect de la peau.""",
            ),
        },
    ),
    (
        "alternatives",
        SKIN,
        f"{S001}; {S003}",
        {
            "en": (
                "Alternatives to mesotherapy for the skin",
                """You can choose not to have mesotherapy. For wrinkles, lines and a tired complexion, other options include:
- Botulinum toxin (Botox) for expression lines, and fillers such as Restylane for folds and lost volume; they are sometimes combined with mesotherapy.
- A chemical peel or microneedling.
- Sun protection and skin care, which slow photoageing.""",
            ),
            "fr": (
                "Les alternatives à la mésothérapie pour la peau",
                """Vous pouvez choisir de ne pas faire de mésothérapie. Pour les rides, les ridules et un teint terne, d'autres possibilités existent :
- La toxine botulique (Botox) pour les rides d'expression, et les produits de comblement comme Restylane pour les plis et la perte de volume ; ils sont parfois associés à la mésothérapie.
- Un peeling chimique ou le microneedling.
- La protection solaire et les soins de la peau, qui ralentissent le vieillissement cutané.""",
            ),
        },
    ),
    (
        "alternatives",
        ("hair-loss",),
        f"{S004}",
        {
            "en": (
                "Alternatives to mesotherapy for hair loss",
                """You can choose not to have mesotherapy. For hair loss, the treatments with evidence are:
- Minoxidil applied to the scalp.
- Finasteride tablets, for men only: women who are or may become pregnant must not take or handle them.
- A hair transplant, for lasting loss in men and women.
Ask your doctor to look for a cause (thyroid, iron, hormones) before any treatment.""",
            ),
            "fr": (
                "Les alternatives à la mésothérapie pour la chute de cheveux",
                """Vous pouvez choisir de ne pas faire de mésothérapie. Pour la chute de cheveux, les traitements qui ont fait leurs preuves sont :
- Le minoxidil en lotion sur le cuir chevelu.
- Le finastéride en comprimés, pour les hommes uniquement : une femme enceinte ou susceptible de l'être ne doit ni en prendre ni en manipuler.
- La greffe de cheveux, pour une perte durable chez l'homme comme chez la femme.
Demandez à votre médecin de rechercher une cause (thyroïde, fer, hormones) avant tout traitement.""",
            ),
        },
    ),
]

# --- consent templates: (indication, jurisdiction, source, {language: content}) -----------------------------

_PROCEDURE = {
    "en": """Mesotherapy is a series of small injections into the middle layer of the skin (the mesoderm), with a very fine, short needle, sometimes fitted to a mechanical injector. The practitioner injects a mixture made up by the clinic — there is no standard formula — 1 to 4 mm deep depending on what is treated (deeper for fat), a tiny drop each time. Numbing cream may be applied about 30 minutes before; it is optional. The injections are given by a licensed practitioner of {clinic_name}.

Before each session you avoid aspirin and other anti-inflammatory painkillers (NSAIDs) for 7 days, and you tell the clinic about any new medicine, pregnancy, breastfeeding, allergy or skin infection.""",
    "fr": """La mésothérapie est une série de petites injections dans la couche moyenne de la peau (le mésoderme), avec une aiguille très fine et courte, parfois montée sur un injecteur mécanique. Le praticien injecte un mélange composé par le cabinet — il n'existe pas de formule standard — à 1 à 4 mm de profondeur selon ce qui est traité (plus profond pour la graisse), une toute petite goutte à chaque fois. Une crème anesthésiante peut être appliquée environ 30 minutes avant ; elle est facultative. Les injections sont faites par un praticien diplômé de {clinic_name}.

Avant chaque séance, vous évitez l'aspirine et les autres anti-inflammatoires (AINS) pendant 7 jours, et vous signalez au cabinet tout nouveau médicament, une grossesse, un allaitement, une allergie ou une infection de la peau.""",
}
_PROCEDURE_US = {
    "en": "In the United States, mesotherapy is not approved by the FDA as a procedure and is considered experimental. Ingredients that are approved for other conditions may be used, which is an off-label use; compounded phosphatidylcholine and deoxycholate are unapproved drugs.",
    "fr": "Aux États-Unis, la mésothérapie n'est pas approuvée par la FDA en tant qu'acte et elle est considérée comme expérimentale. Des ingrédients approuvés pour d'autres indications peuvent être utilisés, ce qui est un usage hors indication ; la phosphatidylcholine et le désoxycholate préparés en pharmacie sont des médicaments non approuvés.",
}
_PROCEDURE_FR = {
    "en": "In France, decree 2011-382 (upheld by the Conseil d'État in 2012) bans fat lysis for aesthetic purposes by injection of mesotherapy mixtures, phosphatidylcholine or deoxycholate: the clinic does not offer them.",
    "fr": "En France, le décret n° 2011-382 (confirmé par le Conseil d'État en 2012) interdit la lyse adipocytaire à visée esthétique par injection de mélanges mésothérapeutiques, de phosphatidylcholine ou de désoxycholate : le cabinet ne les propose pas.",
}
_RISKS = {
    "en": """Side effects that have been reported:
- bruising at the injection sites, which fades within days; the next session waits until it has gone
- swelling and small painless bumps, for a day or two
- brief stinging or burning during the injections, and slight, short-lived itching
- numbness of the treated skin, which clears in 3 to 10 days
- redness, sensitivity, pain, a rash or nausea
- darker patches of skin, usually temporary
- an allergic reaction to an ingredient
- infection and scars. An infection can appear up to 12 weeks after an injection: call the clinic on {clinic_phone} at once if the area becomes more painful, red, warm or swollen, if pus, lumps or sores appear, or if you have a fever.

The result may be small or absent, and more sessions than planned may be needed.""",
    "fr": """Effets indésirables signalés :
- des bleus aux points d'injection, qui s'estompent en quelques jours ; la séance suivante attend qu'ils aient disparu
- un gonflement et de petites bosses indolores, pendant un jour ou deux
- une brève sensation de piqûre ou de brûlure pendant les injections, et de légères démangeaisons passagères
- un engourdissement de la peau traitée, qui disparaît en 3 à 10 jours
- des rougeurs, une sensibilité, une douleur, une éruption cutanée ou des nausées
- des taches plus foncées sur la peau, en général temporaires
- une réaction allergique à un ingrédient
- une infection et des cicatrices. Une infection peut apparaître jusqu'à 12 semaines après une injection : appelez le cabinet au {clinic_phone} sans attendre si la zone devient plus douloureuse, rouge, chaude ou gonflée, si du pus, des nodules ou des plaies apparaissent, ou si vous avez de la fièvre.

Le résultat peut être faible ou nul, et davantage de séances que prévu peuvent être nécessaires.""",
}
_EVIDENCE = {
    "en": """The evidence that mesotherapy works is weak: few studies exist, and most of them are small. A 2012 study of 6 people treated for six months found no real improvement in wrinkles; a 2008 study of 20 women treated for body contouring found no reduction in thigh size. The American Society of Plastic Surgeons does not recommend mesotherapy or injection lipolysis for removing fat, and in the United States mesotherapy is considered experimental: its safety, risks and benefits are not fully understood. For hair loss, only finasteride and minoxidil have any evidence that they work.

The clinic measures your progress before and during the treatment, so that you and your practitioner can see whether it works for you.""",
    "fr": """Les preuves d'efficacité de la mésothérapie sont faibles : les études sont peu nombreuses et la plupart portent sur de petits effectifs. Une étude de 2012 sur 6 personnes traitées pendant six mois n'a montré aucune amélioration réelle des rides ; une étude de 2008 sur 20 femmes traitées pour remodeler la silhouette n'a montré aucune diminution du tour de cuisse. La Société américaine de chirurgie plastique (ASPS) ne recommande ni la mésothérapie ni la lipolyse par injection pour éliminer la graisse, et aux États-Unis la mésothérapie est considérée comme expérimentale : sa sécurité, ses risques et ses bénéfices ne sont pas entièrement connus. Pour la chute de cheveux, seuls le finastéride et le minoxidil ont un début de preuve d'efficacité.

Le cabinet mesure vos progrès avant et pendant le traitement, pour que vous et votre praticien puissiez juger si le traitement vous réussit.""",
}
_DECLARATION = {
    "en": """I have read this document and the patient information of {clinic_name}. I was able to ask questions and received answers I understood. I know what mesotherapy is, which ingredients will be injected and their regulatory status, the risks and side effects, how weak the evidence is, the alternatives, how many sessions are expected and what they cost.

I consent to the treatment plan described above. I know that I may withdraw this consent at any time.""",
    "fr": """J'ai lu ce document et l'information patient de {clinic_name}. J'ai pu poser mes questions et j'ai reçu des réponses que j'ai comprises. Je sais ce qu'est la mésothérapie, quels ingrédients seront injectés et leur statut réglementaire, quels sont les risques et les effets indésirables, combien les preuves d'efficacité sont faibles, quelles sont les alternatives, combien de séances sont prévues et ce qu'elles coûtent.

Je consens au plan de traitement décrit ci-dessus. Je sais que je peux retirer ce consentement à tout moment.""",
}
_TITLE = {"en": "Consent to mesotherapy treatment", "fr": "Consentement à un traitement par mésothérapie"}


def _template(language: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    procedure = _PROCEDURE[language]
    if extra:
        procedure = f"{procedure}\n\n{extra[language]}"
    return {
        "title": _TITLE[language],
        "procedure": procedure,
        "risks": _RISKS[language],
        "evidence": _EVIDENCE[language],
        "declaration": _DECLARATION[language],
    }


TEMPLATES: list[tuple[str, str, str, dict[str, dict[str, str]]]] = [
    ("", "", f"{S001}; {S002}; {S003}; {S004}; {LIT_NTM}", {lang: _template(lang) for lang in ("en", "fr")}),
    (
        "",
        "US",
        f"{S002}; {S003}; {S004}; {LIT_US}; {LIT_NTM}",
        {lang: _template(lang, _PROCEDURE_US) for lang in ("en", "fr")},
    ),
    (
        "",
        "FR",
        f"{S003}; {S004}; {LIT_FR}; {LIT_NTM}",
        {lang: _template(lang, _PROCEDURE_FR) for lang in ("en", "fr")},
    ),
]


def load(apps: Any, schema_editor: Any) -> None:
    """Idempotent: a seeded article or template that exists keeps its versions."""
    Article = apps.get_model("consent", "Article")
    ArticleVersion = apps.get_model("consent", "ArticleVersion")
    ConsentTemplate = apps.get_model("consent", "ConsentTemplate")
    ConsentTemplateVersion = apps.get_model("consent", "ConsentTemplateVersion")
    for topic, indications, source, texts in ARTICLES:
        for indication in indications:
            for language, (title, body) in texts.items():
                article, created = Article.objects.get_or_create(
                    clinic=None, topic=topic, indication=indication, language=language
                )
                if created or not ArticleVersion.objects.filter(article=article).exists():
                    ArticleVersion.objects.create(
                        article=article, number=1, title=title, body=body, source=source
                    )
    for indication, jurisdiction, source, contents in TEMPLATES:
        for language, content in contents.items():
            template, created = ConsentTemplate.objects.get_or_create(
                clinic=None, indication=indication, jurisdiction=jurisdiction, language=language
            )
            if created or not ConsentTemplateVersion.objects.filter(template=template).exists():
                ConsentTemplateVersion.objects.create(template=template, number=1, source=source, **content)
